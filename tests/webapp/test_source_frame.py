"""Look closer: one sampled frame decoded at the video's own size, upright as a player shows it."""

from __future__ import annotations

import numpy as np
import pytest

from dfscan.kernels.errors import VideoError
from dfscan.scanner.webapp.source_frame import source_frame
from tests.kernels.rotated_media import HEIGHT, WIDTH, write_rotated
from tests.media import index_image, read_index


@pytest.mark.parametrize("index", [0, 11, 12, 29])  # a keyframe every 12 frames: before, at and after one
def test_the_asked_frame_at_source_size(clip_file, index):
    frame = source_frame(str(clip_file), index)
    assert frame.shape == (96, 128, 3) and frame.dtype == np.uint8
    assert read_index(frame) == index


@pytest.mark.parametrize("rotation", [90, 270])
def test_a_phone_video_is_shown_upright_at_its_display_size(tmp_path, rotation):
    frame = source_frame(str(write_rotated(tmp_path / "phone.mp4", rotation)), 5)
    expected = np.rot90(index_image(6, WIDTH, HEIGHT), rotation // 90)  # frame i shows i + 1
    assert frame.shape == (WIDTH, HEIGHT, 3)
    assert np.abs(frame.astype(np.int16) - expected).mean() < 3


def test_an_index_outside_the_video_or_a_broken_file_is_refused(tmp_path, clip_file):
    with pytest.raises(ValueError, match="frame 30 is not in the video"):
        source_frame(str(clip_file), 30)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 500)
    with pytest.raises(VideoError):
        source_frame(str(broken), 0)
