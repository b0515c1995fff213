"""Phone video: a display matrix (rotation 90, 180, 270) in MP4, MOV and Matroska. The probe reports
it and the displayed size; every decoder returns frames upright, as FFmpeg's player shows them."""

import av
import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.probe import probe
from dfscan.kernels.records import mp4_rotation
from dfscan.kernels.resize import mean_abs_difference
from tests.kernels.rotated_media import HEIGHT, WIDTH, upright_reference, write_rotated
from tests.media import read_index


@pytest.mark.parametrize("container", ["mp4", "mov"])
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_probe_reports_rotation_and_displayed_size(tmp_path, container, rotation):
    facts = probe(write_rotated(tmp_path / f"r.{container}", rotation))
    assert facts.rotation == rotation
    assert (facts.width, facts.height) == (WIDTH, HEIGHT)
    expected = (HEIGHT, WIDTH) if rotation in (90, 270) else (WIDTH, HEIGHT)
    assert (facts.display_width, facts.display_height) == expected
    assert (facts.as_dict()["display_width"], facts.as_dict()["rotation"]) == (expected[0], rotation)


def test_rotation_is_read_without_decoding_and_matches_ffmpeg(tmp_path):
    """The tkhd matrix as FFmpeg reads it: the same angle PyAV reports on a decoded frame."""
    for rotation in (90, 180, 270):
        path = write_rotated(tmp_path / f"r{rotation}.mp4", rotation)
        with av.open(str(path)) as container:
            decoded = next(container.decode(video=0)).rotation
        assert mp4_rotation(str(path)) == decoded % 360 == rotation


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("container, codec, decoder", [("mp4", "h264", "pyav"), ("mov", "h264", "pyav"),
                                                       ("mkv", "h264", "pyav"), ("mp4", "vp9", "dali-cpu")])
def test_every_decoder_returns_frames_upright(tmp_path, rotation, container, codec, decoder):
    path = write_rotated(tmp_path / f"r.{container}", rotation, codec)
    reader = ClipReader(ClipSpec(frames=4, size=32, decoder=decoder), gpu=False)
    (clip,) = reader.read([str(path)])
    assert clip.ok, clip.error
    assert clip.decoder == decoder and clip.probe.rotation == rotation
    frames = np.asarray(clip.frames)
    for frame, index in zip(frames, clip.indices.tolist()):
        assert mean_abs_difference(frame, upright_reference(index + 1, rotation, 32)) < 12
        if rotation == 180:  # the index grid reads the same only upright or turned half-way
            assert read_index(np.rot90(frame, 2)) == index + 1
    unturned = upright_reference(clip.indices[0] + 1, 0, 32)
    assert mean_abs_difference(frames[0], unturned) > 20  # not merely what it was before


def test_unrotated_files_are_left_alone(tmp_path):
    path = write_rotated(tmp_path / "plain.mp4", 0)
    (clip,) = ClipReader(ClipSpec(frames=4, size=32, decoder="pyav"), gpu=False).read([str(path)])
    assert [read_index(f) for f in np.asarray(clip.frames)] == (clip.indices + 1).tolist()
