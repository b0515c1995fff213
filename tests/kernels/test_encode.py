"""The one encode loop (kernels.encode): what it writes, and that a failed encode leaves nothing behind."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from dfscan.kernels.encode import CODECS, encode_video
from dfscan.kernels.probe import probe
from tests.media import index_image, read_index


def _decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_frames_fps_size_and_rotation_are_written(tmp_path, codec):
    path = tmp_path / f"v.{CODECS[codec].extension}"
    images = (index_image(i, 128, 64) for i in range(7))  # an iterable, not an array
    assert encode_video(path, images, codec, 30, rotation=90) == path
    facts = probe(path)
    assert (facts.codec, facts.width, facts.height, facts.frame_count, facts.fps, facts.rotation) == \
        (codec, 128, 64, 7, 30.0, 90)
    assert [read_index(frame) for frame in _decoded(path)] == list(range(7))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_timestamps_size_and_options_override(tmp_path):
    frames = np.stack([index_image(i, 64, 64) for i in range(4)])  # (T, H, W, 3)
    path = encode_video(tmp_path / "vfr.mp4", frames, CODECS["h264"], 25, pts=[0, 1, 3, 7],
                        time_base=Fraction(1, 25), size=(96, 48), crf=10, options={"g": "1"})
    facts = probe(path)
    assert (facts.width, facts.height, facts.frame_count) == (96, 48, 4)
    assert facts.keyframes == (0, 1, 2, 3)  # g=1 over the codec's g=12
    assert [float(pts * facts.time_base) for pts in facts.frame_pts] == [0.0, 0.04, 0.12, 0.28]


def test_bitexact_leaves_the_muxer_version_out(tmp_path):
    frames = np.stack([index_image(i, 64, 64) for i in range(6)])
    assert b"Lavf" in encode_video(tmp_path / "a.mp4", frames, "h264").read_bytes()
    assert b"Lavf" not in encode_video(tmp_path / "b.mp4", frames, "h264", bitexact=True).read_bytes()


def test_a_failed_encode_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"old")

    def broken():
        yield index_image(0, 64, 64)
        yield index_image(1, 64, 64)
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError, match="renderer died"):
        encode_video(path, broken(), "h264")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_no_frames_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no frames to encode"):
        encode_video(tmp_path / "v.mp4", [], "h264")
    assert list(tmp_path.iterdir()) == []
