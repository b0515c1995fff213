"""Damaged files that a player still plays: bit rot in the middle of an H.264 file. Bad packets are
skipped, a wanted frame that never decodes is replaced by the nearest decoded one, and the clip
counts the replacements; below half its frames it is refused."""

import dataclasses
from pathlib import Path

import av

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.encode import CODECS
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import probe
from dfscan.kernels.sampling import uniform_plan
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


# One encoder thread: x264's frame threads narrow its motion search, so the bytes (and what a flip
# breaks) would depend on the machine's cores.
H264_ONE_THREAD = dataclasses.replace(CODECS["h264"], options={**CODECS["h264"].options, "threads": "1"})


def flip_seeded(source: Path, target: Path, count: int, seed: int) -> Path:
    """``count`` bytes at seeded places in the middle third of the file, each inverted."""
    data = bytearray(source.read_bytes())
    third = len(data) // 3
    for i in np.random.default_rng(seed).choice(np.arange(third, 2 * third), count, replace=False):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def packet_loop_frames(path: Path) -> int:
    """How many frames FFmpeg's own packet loop (skip a packet that fails, decode on) gives."""
    produced = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                produced += len(stream.decode(packet))
            except av.error.FFmpegError:
                pass
    return produced


@pytest.fixture(scope="module")
def clean_vga(tmp_path_factory):
    return write_index_video(tmp_path_factory.mktemp("damaged_vga") / "clean", 90, H264_ONE_THREAD,
                             width=640, height=480)


@pytest.mark.parametrize("threads", [1, 32])
def test_a_thousand_flipped_bytes_in_the_middle_third_still_give_a_verdict(clean_vga, tmp_path, threads):
    """The issue's file: 1,000 flipped bytes in the middle third of a 90-frame H.264 mp4. FFmpeg's packet
    loop decodes 64 of its 90 frames; with 32 frame threads (a large machine's default) the reader used to
    lose every frame in flight beside a broken one and refused the clip ("only 7 of 20 sampled frames").
    Now the file is read as FFmpeg reads it, and the same frames are replaced on any machine."""
    damaged = flip_seeded(clean_vga, tmp_path / "rot.mp4", 1000, seed=2)
    assert packet_loop_frames(damaged) == 64
    (clip,) = ClipReader(ClipSpec(frames=20, size=32, decoder="pyav"), gpu=False, threads=threads).read([str(damaged)])
    assert clip.ok, clip.error
    assert clip.frames_replaced == 6 < 20 / 2
    assert np.asarray(clip.frames).shape == (20, 32, 32, 3)


def test_a_file_destroyed_after_its_first_keyframe_is_a_decode_error(clean_vga, tmp_path):
    """Every byte after the first keyframe's packet overwritten (the container's index kept): one frame
    decodes, 19 of 20 would be replaced, so there is no verdict."""
    with av.open(str(clean_vga)) as container:
        stream = container.streams.video[0]
        packets = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    first_end = packets[0][0] + packets[0][1]
    last_end = max(pos + size for pos, size in packets)
    data = bytearray(clean_vga.read_bytes())
    data[first_end:last_end] = np.random.default_rng(0).integers(0, 256, last_end - first_end, dtype=np.uint8).tobytes()
    damaged = tmp_path / "destroyed.mp4"
    damaged.write_bytes(bytes(data))
    for threads in (1, 32):
        (clip,) = ClipReader(ClipSpec(frames=20, size=32, decoder="pyav"), gpu=False, threads=threads).read([str(damaged)])
        assert not clip.ok
        assert clip.error.error_class == ErrorClass.DECODE_ERROR
        assert clip.error.message == "only 1 of 20 sampled frames could be decoded; the file is damaged"
        assert clip.frames is None and clip.frames_replaced == 0


def test_a_keyframe_the_container_cannot_seek_to_does_not_loop(tmp_path):
    """A damaged packet can carry a keyframe flag the container's index lacks; a seek to it lands on an
    earlier keyframe. The decoder used to seek back there for ever (a night that never ends); now it
    decodes on from where it landed."""
    one_gop = dataclasses.replace(H264_ONE_THREAD, options={**H264_ONE_THREAD.options, "g": "250"})
    path = write_index_video(tmp_path / "one_gop", 90, one_gop)
    facts = probe(path)
    assert facts.keyframes == (0,)
    claimed = dataclasses.replace(facts, keyframes=(0, 51))  # what the probe read from a damaged file
    plan = uniform_plan(facts.frame_count, 20)
    decoder = PyAVDecoder(32)
    frames, replaced = decoder.decode_clip_concealed(claimed, plan)
    assert replaced == 0
    assert [read_index(f) for f in frames] == plan.tolist()
    # frames 0..47 (the plan's 47 is the last before the claimed keyframe), then the one seek to frame 51,
    # which lands on frame 0, and on through the file once: no second seek
    assert decoder.frames_decoded == 48 + 90
