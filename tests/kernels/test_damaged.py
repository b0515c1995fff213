"""Damaged files that a player still plays: bit rot in the middle of an H.264 file. Bad packets are
skipped, a wanted frame that never decodes is replaced by the nearest decoded one, and the clip
counts the replacements; below half its frames it is refused."""

from pathlib import Path

import numpy as np
import pytest

from kernels.clips import ClipReader, ClipSpec
from kernels.decode.pyav import PyAVDecoder
from kernels.errors import ErrorClass, VideoError
from kernels.probe import probe
from kernels.sampling import uniform_plan
from tests.media import read_index, write_index_video


def flip_bytes(source: Path, target: Path, start_fraction: float, count: int) -> Path:
    data = bytearray(source.read_bytes())
    start = int(len(data) * start_fraction)
    for i in range(start, min(len(data), start + count)):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_index_video(tmp_path_factory.mktemp("damaged") / "clean", 90, "h264", width=128, height=96)


def test_bit_rot_in_the_middle_still_gives_a_clip(clean, tmp_path):
    """The issue's case: 400 flipped bytes in the middle of a 90-frame H.264 mp4."""
    damaged = flip_bytes(clean, tmp_path / "rot.mp4", 0.5, 400)
    facts = probe(damaged)
    plan = uniform_plan(facts.frame_count, 20)
    (clip,) = ClipReader(ClipSpec(frames=20, size=32, decoder="pyav"), gpu=False).read([str(damaged)])
    assert clip.ok, clip.error
    shown = [read_index(frame) for frame in np.asarray(clip.frames)]
    kept = [i for i, (s, p) in enumerate(zip(shown, plan.tolist())) if s == p]
    assert 0 < clip.frames_replaced == 20 - len(kept) <= 10
    for i, (s, p) in enumerate(zip(shown, plan.tolist())):
        if s != p:  # a replacement is a real decoded frame from before the lost one
            assert s < p and s in range(p - 30, p)


def test_clean_files_replace_nothing(clean):
    facts = probe(clean)
    frames, replaced = PyAVDecoder(32).decode_clip_concealed(facts, uniform_plan(facts.frame_count, 20))
    assert replaced == 0
    assert [read_index(f) for f in frames] == uniform_plan(facts.frame_count, 20).tolist()


def test_a_file_mostly_lost_is_refused(clean, tmp_path):
    data = clean.read_bytes()  # flip most of the frames (mdat), not the index (moov) after them
    frames_start, index_start = data.find(b"mdat") + 4, data.find(b"moov") - 4
    first = frames_start + (index_start - frames_start) // 10
    damaged = flip_bytes(clean, tmp_path / "gone.mp4", first / len(data), index_start - first)
    facts = probe(clean)  # the clean file's facts: the packets are there, their contents are not
    facts = type(facts)(**{**{f: getattr(facts, f) for f in facts.__dataclass_fields__}, "path": str(damaged)})
    with pytest.raises(VideoError) as caught:
        PyAVDecoder(32).decode_clip_concealed(facts, uniform_plan(facts.frame_count, 20))
    assert caught.value.error_class == ErrorClass.DECODE_ERROR
    assert "sampled frames could be decoded" in caught.value.message or "no frame" in caught.value.message
