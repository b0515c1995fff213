"""Frame exactness: every CPU backend, both plans, decoded content matches the recorded indices."""

from fractions import Fraction

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.decode import choose_decoder
from dfscan.kernels.encode import Codec, encode_video
from dfscan.kernels.errors import ErrorClass
from dfscan.kernels.probe import probe
from dfscan.kernels.resize import mean_abs_difference
from tests.media import read_index, write_corrupt_corpus, write_index_video

SIZE = 32
ALL_CODECS = ["h264", "hevc", "vp9", "vp8", "av1", "mpeg4", "mjpeg", "prores", "mpeg2"]
DALI_CPU_CODECS = ["vp9", "vp8", "mjpeg"]


def shown_indices(frames: np.ndarray) -> list[int]:
    return [read_index(frame) for frame in frames]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    directory = tmp_path_factory.mktemp("codecs")
    return {codec: str(write_index_video(directory / f"idx_{codec}", 61, codec)) for codec in ALL_CODECS}


@pytest.mark.parametrize("sampling", ["uniform", "keyframe"])
@pytest.mark.parametrize("codec", ALL_CODECS)
def test_pyav_frames_match_recorded_indices(videos, codec, sampling):
    reader = ClipReader(ClipSpec(frames=8, size=SIZE, sampling=sampling, decoder="pyav"), gpu=False)
    (clip,) = reader.read([videos[codec]])
    assert clip.ok, clip.error
    assert clip.decoder == "pyav"
    assert clip.frames.shape == (8, SIZE, SIZE, 3) and clip.frames.dtype == np.uint8
    if sampling == "uniform":
        assert clip.indices.tolist() == [0, 9, 17, 26, 34, 43, 51, 60]
    assert shown_indices(clip.frames) == clip.indices.tolist()


@pytest.mark.parametrize("sampling", ["uniform", "keyframe"])
@pytest.mark.parametrize("codec", DALI_CPU_CODECS)
def test_dali_cpu_frames_match_recorded_indices(videos, codec, sampling):
    reader = ClipReader(ClipSpec(frames=8, size=SIZE, sampling=sampling, decoder="dali-cpu"), gpu=False)
    (clip,) = reader.read([videos[codec]])
    assert clip.ok, clip.error
    assert clip.decoder == "dali-cpu"
    assert shown_indices(clip.frames) == clip.indices.tolist()


def test_keyframe_plan_decodes_few_frames(tmp_path):
    path = str(write_index_video(tmp_path / "long_gop", 120, "h264"))  # keyframe every 12 frames
    uniform = ClipReader(ClipSpec(frames=5, size=SIZE, sampling="uniform", decoder="pyav"), gpu=False)
    keyframe = ClipReader(ClipSpec(frames=5, size=SIZE, sampling="keyframe", decoder="pyav"), gpu=False)
    (u,) = uniform.read([path])
    (k,) = keyframe.read([path])
    assert shown_indices(k.frames) == k.indices.tolist() == [0, 24, 48, 84, 108]
    assert shown_indices(u.frames) == u.indices.tolist()
    assert keyframe.times.frames_decoded < uniform.times.frames_decoded


def test_seeking_never_decodes_a_frame_twice(tmp_path):
    path = str(write_index_video(tmp_path / "seek", 96, "h264"))
    reader = ClipReader(ClipSpec(frames=20, size=SIZE, sampling="uniform", decoder="pyav"), gpu=False)
    (clip,) = reader.read([path])
    assert shown_indices(clip.frames) == clip.indices.tolist()
    assert reader.times.frames_decoded <= 96


@pytest.mark.parametrize("frame_count", [1, 5, 19])
@pytest.mark.parametrize("decoder, codec", [("pyav", "h264"), ("dali-cpu", "vp9")])
def test_short_videos_fill_with_the_last_frame(tmp_path, frame_count, decoder, codec):
    path = str(write_index_video(tmp_path / f"short{frame_count}", frame_count, codec))
    (clip,) = ClipReader(ClipSpec(frames=20, size=SIZE, decoder=decoder), gpu=False).read([path])
    expected = list(range(frame_count)) + [frame_count - 1] * (20 - frame_count)
    assert clip.indices.tolist() == expected
    assert shown_indices(clip.frames) == expected


def test_zero_frame_header_and_variable_frame_rate(tmp_path):
    webm = str(write_index_video(tmp_path / "zero", 33, "vp9"))
    pts = [0, 40, 80, 400, 440, 1000, 1040, 1080, 1120, 2000, 2040, 2080]
    vfr = str(write_index_video(tmp_path / "vfr", len(pts), "h264", pts=pts, time_base=Fraction(1, 1000)))
    reader = ClipReader(ClipSpec(frames=6, size=SIZE, decoder="pyav"), gpu=False)
    zero, variable = reader.read([webm, vfr])
    assert zero.indices.tolist() == [0, 6, 13, 19, 26, 32]
    assert shown_indices(zero.frames) == zero.indices.tolist()
    assert variable.indices.tolist() == [0, 2, 4, 7, 9, 11]
    assert shown_indices(variable.frames) == variable.indices.tolist()


def test_cpu_backends_agree_on_vp9(videos):
    """Same indices; frames differ by a small mean absolute error (measured on VP9 and VP8: 1.15-1.17 grey levels at S=32..224, max 3; MJPEG 0.67)."""
    spec = dict(frames=8, size=SIZE)
    (a,) = ClipReader(ClipSpec(decoder="pyav", **spec), gpu=False).read([videos["vp9"]])
    (b,) = ClipReader(ClipSpec(decoder="dali-cpu", **spec), gpu=False).read([videos["vp9"]])
    assert a.indices.tolist() == b.indices.tolist()
    assert mean_abs_difference(a.frames, b.frames) < 3.0


def test_auto_routes_by_codec_and_format(tmp_path):
    vp9 = probe(write_index_video(tmp_path / "a", 3, "vp9"))
    h264 = probe(write_index_video(tmp_path / "b", 3, "h264"))
    prores = probe(write_index_video(tmp_path / "c", 3, "prores"))
    assert choose_decoder(vp9, "auto", gpu=False) == "dali-cpu"
    assert choose_decoder(h264, "auto", gpu=False) == "pyav"
    assert choose_decoder(h264, "auto", gpu=True) == "dali-gpu"
    assert choose_decoder(prores, "auto", gpu=True) == "pyav"
    assert choose_decoder(h264, "dali-cpu", gpu=False) == "pyav"  # DALI's CPU decoder rejects H.264


def test_h264_444_and_10_bit_never_reach_nvdec(tmp_path):
    for name, pix_fmt in (("h444", "yuv444p"), ("h10", "yuv420p10le")):
        path = encode_video(tmp_path / f"{name}.mp4", [np.full((64, 64, 3), i * 40, np.uint8) for i in range(3)],
                            Codec("libx264", "mp4", pix_fmt, {}))
        facts = probe(path)
        assert facts.codec == "h264"
        assert choose_decoder(facts, "auto", gpu=True) == "pyav", (name, facts.chroma, facts.bit_depth)


@pytest.mark.parametrize("decoder", ["pyav", "dali-cpu"])
def test_corrupt_files_never_break_the_batch(tmp_path, videos, decoder):
    expected = write_corrupt_corpus(tmp_path)
    good = [videos["vp9"], videos["h264"]]
    paths = [good[0]] + [str(tmp_path / name) for name in expected] + [good[1]]
    reader = ClipReader(ClipSpec(frames=4, size=SIZE, decoder=decoder), gpu=False)
    clips = reader.read(paths)
    assert clips[0].ok and clips[-1].ok
    assert shown_indices(clips[0].frames) == clips[0].indices.tolist()
    for clip, (name, error_class) in zip(clips[1:-1], expected.items()):
        assert clip.error is not None and clip.error.error_class is error_class, name
    batch = reader.read_batch(paths[:4], batch_size=6)
    assert batch.frames.shape == (6, 4, SIZE, SIZE, 3)
    assert [c.ok for c in batch.clips] == [True, False, False, False]
    assert batch.frames[1:].max() == 0  # failed and padding rows are zeros


def test_dali_error_is_isolated_and_pipeline_rebuilt(tmp_path, videos):
    """A file that reaches DALI and breaks it costs its batch-mates nothing: the pipeline is rebuilt
    and the batch bisected until the bad file is alone."""
    import dataclasses

    from dfscan.kernels.decode.dali import DaliDecoder

    good = probe(videos["vp9"])
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    bad = dataclasses.replace(good, path=str(garbage))  # as if the probe had been fooled
    decoder = DaliDecoder(size=SIZE, gpu=False, max_batch=4)
    # Distinct plans per row, so a row that got another run's (reused) output buffer would show it.
    plans = [np.array([0, 20, 40, 60]), np.array([1, 2, 3, 4]), np.array([5, 6, 7, 7]), np.array([9, 30, 31, 50])]
    frames, errors = decoder.decode_batch([good, bad, good, good], plans)
    assert [e is None for e in errors] == [True, False, True, True]
    assert errors[1].error_class is ErrorClass.DECODE_ERROR
    assert errors[1].message.startswith("DALI: ") and "\n" not in errors[1].message
    for row in (0, 2, 3):
        assert shown_indices(frames[row]) == plans[row].tolist()
    assert decoder.pipeline_builds >= 2  # rebuilt after the error
    frames, errors = decoder.decode_batch([good] * 6, plans + plans[:2])  # two runs of one call
    assert errors == [None] * 6
    assert [shown_indices(f) for f in frames] == [p.tolist() for p in plans + plans[:2]]


def test_dali_file_gone_after_probe_is_its_own_error(tmp_path, videos):
    """A file deleted between probe and decode gets NOT_FOUND; its batch-mates still decode."""
    from dfscan.kernels.decode.dali import DaliDecoder

    doomed = tmp_path / "doomed.webm"
    doomed.write_bytes(open(videos["vp9"], "rb").read())
    good, gone = probe(videos["vp9"]), probe(doomed)
    doomed.unlink()
    plan = np.array([0, 20, 40, 60])
    frames, errors = DaliDecoder(size=SIZE, gpu=False, max_batch=4).decode_batch([good, gone, good], [plan] * 3)
    assert errors[0] is None and errors[2] is None
    assert errors[1].error_class is ErrorClass.NOT_FOUND and frames[1] is None
    assert shown_indices(frames[0]) == shown_indices(frames[2]) == [0, 20, 40, 60]


def test_probe_cache_probes_each_unchanged_file_once(tmp_path, monkeypatch):
    import os

    import dfscan.kernels.clips as clips_module
    path = str(write_index_video(tmp_path / "cached", 30, "h264"))
    calls = []
    real_probe = clips_module.probe
    monkeypatch.setattr(clips_module, "probe", lambda p, limits: calls.append(p) or real_probe(p, limits))
    reader = ClipReader(ClipSpec(frames=4, size=SIZE, decoder="pyav"), gpu=False, probe_cache=8)
    for offset in (0, 1, 2):
        (clip,) = reader.read([path], offsets=[offset])
        assert shown_indices(clip.frames) == clip.indices.tolist()
    assert calls == [path]
    os.utime(path, ns=(1, 1))  # a changed file is probed again
    reader.read([path])
    assert calls == [path, path]
    uncached = ClipReader(ClipSpec(frames=4, size=SIZE, decoder="pyav"), gpu=False)
    uncached.read([path])
    uncached.read([path])
    assert len(calls) == 4


@pytest.mark.parametrize("decoder, codec", [("pyav", "h264"), ("dali-cpu", "vp9"), ("nvdec", "h264")])
def test_face_mode_decoders_keep_each_files_shape_under_the_cap(tmp_path, monkeypatch, decoder, codec):
    """full_res_cap (crop="face"): no squash. A landscape file over the cap, a portrait one over it and
    one under it, in one batch: each at its own capped shape (aspect kept, never enlarged), the
    planned frames, and for the batch decoders PyAV's pixels. (nvdec runs on its FFmpeg stand-in.)"""
    from dfscan.kernels.decode import nvdec
    from dfscan.kernels.decode.dali import DaliDecoder
    from dfscan.kernels.decode.pyav import PyAVDecoder
    from tests.kernels.nvdec_fake import FakePyNvVideoCodec

    probes = [probe(write_index_video(tmp_path / "wide", 30, codec, width=256, height=192)),
              probe(write_index_video(tmp_path / "tall", 30, codec, width=192, height=256)),
              probe(write_index_video(tmp_path / "small", 30, codec, width=128, height=96))]
    plans = [np.array([0, 7, 7, 29]), np.array([3, 4, 20, 21]), np.array([29, 0, 1, 2])]
    pyav = PyAVDecoder(SIZE, full_res_cap=200)
    if decoder == "pyav":
        frames = [pyav.decode_clip(facts, plan) for facts, plan in zip(probes, plans)]
    else:
        if decoder == "nvdec":
            fake = FakePyNvVideoCodec()
            monkeypatch.setattr(nvdec, "load_pynvvideocodec", lambda: fake)
            backend = nvdec.NvdecDecoder(size=SIZE, full_res_cap=200)
        else:
            backend = DaliDecoder(size=SIZE, gpu=False, max_batch=4, full_res_cap=200)
        frames, errors = backend.decode_batch(probes, plans)
        assert errors == [None] * 3
    for clip, facts, plan, shape in zip(frames, probes, plans, [(4, 150, 200, 3), (4, 200, 150, 3), (4, 96, 128, 3)]):
        clip = np.asarray(clip)
        assert clip.shape == shape and clip.dtype == np.uint8
        assert shown_indices(clip) == plan.tolist()
        assert mean_abs_difference(clip, pyav.decode_clip(facts, plan)) < 3.0


def test_recycled_full_resolution_buffers_are_decoded_into_and_never_leak_old_frames(tmp_path):
    """Face mode gives each cropped clip back to the PyAV decoder; the next clip of that shape is
    decoded into the same memory, every frame overwritten (a shorter file's filled tail included),
    and only arrays that own their memory are taken back."""
    from dfscan.kernels.decode.pyav import PyAVDecoder

    long_file = probe(write_index_video(tmp_path / "long", 30, "h264", width=256, height=192))
    short_file = probe(write_index_video(tmp_path / "short", 3, "h264", width=256, height=192))
    decoder = PyAVDecoder(SIZE, full_res_cap=400)
    first = decoder.decode_clip(long_file, np.array([20, 21, 22, 23]))
    decoder.recycle([first, first[1:]])  # a view is not taken back
    assert list(decoder._spare) == [first.shape] and decoder._spare[first.shape] == [first]
    second = decoder.decode_clip(short_file, np.array([0, 1, 2, 3]))  # frame 3 never comes: frame 2 again
    assert np.shares_memory(first, second)
    assert shown_indices(second) == [0, 1, 2, 2]
    np.testing.assert_array_equal(second, PyAVDecoder(SIZE, full_res_cap=400).decode_clip(short_file,
                                                                                           np.array([0, 1, 2, 3])))
    third = decoder.decode_clip(long_file, np.array([5, 6, 7, 8]))
    assert not np.shares_memory(third, second) and shown_indices(third) == [5, 6, 7, 8]  # nothing left to reuse
