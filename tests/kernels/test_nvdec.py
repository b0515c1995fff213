"""The ``nvdec`` backend on a CPU: everything but NVDEC itself.

``FakePyNvVideoCodec`` stands in for PyNvVideoCodec with the same calls (CreateDecoder, PacketData,
Decode with an empty packet as the flush, setReconfigParams, frames through DLPack, buffers reused
by the next call), decoding with FFmpeg. So the Annex B feed, the persistent decoders, the copy of
wanted frames, NV12 -> RGB, the resize and the error paths all run here; the GPU tests
(tests/kernels/test_gpu.py) run the same code on NVDEC.
"""

import numpy as np
import pytest

from dfscan.kernels.decode import nvdec
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.errors import ErrorClass
from dfscan.kernels.probe import probe
from dfscan.kernels.resize import mean_abs_difference
from tests.kernels.encodings import OPEN_GOP_ENCODINGS
from tests.kernels.nvdec_fake import FakePyNvVideoCodec, fake_nvc  # noqa: F401 - fake_nvc is a fixture
from tests.media import read_index, write_index_video


def test_persistent_decoders_give_the_planned_frames(tmp_path, fake_nvc):
    """Five videos of three sizes and both codecs through one pool: one decoder per codec, each
    reconfigured per video, and every clip holds exactly its plan's frames."""
    paths = [write_index_video(tmp_path / "a", 40, "h264", width=128, height=96),
             write_index_video(tmp_path / "b", 40, "h264", width=96, height=128),  # portrait
             write_index_video(tmp_path / "c", 60, OPEN_GOP_ENCODINGS["x265-cra-long"][0], width=160, height=160),
             write_index_video(tmp_path / "d", 61, OPEN_GOP_ENCODINGS["x264-open-gop"][0]),
             write_index_video(tmp_path / "e", 40, "h264", width=128, height=96)]
    plans = [np.array([0, 5, 5, 39]), np.array([1, 2, 3, 20]), np.array([0, 13, 30, 59]), np.array([3, 30, 31, 60]),
             np.array([39, 39, 0, 12])]
    decoder = nvdec.NvdecDecoder(size=32)
    frames, errors = decoder.decode_batch([probe(p) for p in paths], plans)
    assert errors == [None] * 5
    for clip, plan in zip(frames, plans):
        clip = np.asarray(clip)
        assert clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8
        assert [read_index(frame) for frame in clip] == plan.tolist()
    assert decoder.decoders_created == len(fake_nvc.decoders) == 2
    assert sorted(d.videos_started for d in fake_nvc.decoders) == [1, 4]
    assert decoder.files_cut == 5
    assert 16 <= decoder.frames_decoded < 40 + 40 + 60 + 61 + 40  # runs from keyframes, not whole files


@pytest.mark.parametrize("encoding", ["x264-pyramid-mkv", "x265-cra-long"])
def test_each_run_is_one_packet_and_gives_the_same_frames_as_one_packet_per_access_unit(tmp_path, fake_nvc,
                                                                                         encoding):
    """The default feed hands NVDEC's parser a whole run per Decode call: one call per run of the cut
    (plus the flush), and exactly the frames the access-unit feed gives: B-pyramids, HEVC CRA runs."""
    from dfscan.kernels.decode.gops import cut_to_annex_b

    codec, count = OPEN_GOP_ENCODINGS[encoding]
    facts = probe(write_index_video(tmp_path / encoding, min(count, 60), codec, width=160, height=160))
    plan = np.array([2, 14, 15, 40, 59])
    runs = len(cut_to_annex_b(facts, np.unique(plan)).run_starts)
    by_run, by_unit = nvdec.NvdecDecoder(size=32), nvdec.NvdecDecoder(size=32, feed="unit")
    run_frames, run_errors = by_run.decode_batch([facts], [plan])
    unit_frames, unit_errors = by_unit.decode_batch([facts], [plan])
    assert run_errors == unit_errors == [None]
    assert [read_index(f) for f in np.asarray(run_frames[0])] == plan.tolist()
    assert np.array_equal(np.asarray(run_frames[0]), np.asarray(unit_frames[0]))
    assert runs >= 3 and by_run.packets_fed == runs
    assert by_unit.packets_fed == by_run.frames_decoded == by_unit.frames_decoded > runs


def test_an_unknown_feed_is_refused():
    with pytest.raises(ValueError, match="unknown nvdec feed 'frame'"):
        nvdec.NvdecDecoder(size=32, feed="frame")


def test_colours_and_resize_match_the_pyav_backend(tmp_path, fake_nvc):
    """NV12 -> RGB (BT.601, limited range) and the antialiased resize, against swscale's."""
    from dfscan.benchmarks.archive import write_bench_video

    path = write_bench_video(tmp_path / "colour.mp4", 320, 240, 12, 30, "h264", seed=3, block=64)
    facts = probe(path)
    plan = np.array([0, 4, 11])
    frames, errors = nvdec.NvdecDecoder(size=64).decode_batch([facts], [plan])
    assert errors == [None]
    difference = mean_abs_difference(np.asarray(frames[0]), PyAVDecoder(64).decode_clip(facts, plan))
    assert difference < 3.0


def test_a_corrupt_file_is_its_own_error_and_the_pool_survives(tmp_path, fake_nvc):
    good = write_index_video(tmp_path / "good", 30, "h264")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(good.read_bytes())
    facts_bad = probe(bad)
    with open(bad, "r+b") as handle:  # the packets the probe saw are gone: the cut cannot read them
        handle.truncate(facts_bad.path and 2000)
    decoder = nvdec.NvdecDecoder(size=32)
    frames, errors = decoder.decode_batch([probe(good), facts_bad, probe(good)],
                                          [np.array([0, 29]), np.array([0, 29]), np.array([1, 28])])
    assert errors[0] is None and errors[2] is None
    assert errors[1].error_class == ErrorClass.DECODE_ERROR
    assert [read_index(f) for f in np.asarray(frames[2])] == [1, 28]


def test_codecs_nvdec_does_not_take_are_refused_per_file(tmp_path, fake_nvc):
    vp9 = probe(write_index_video(tmp_path / "v", 20, "vp9"))
    h264 = probe(write_index_video(tmp_path / "h", 20, "h264"))
    frames, errors = nvdec.NvdecDecoder(size=32).decode_batch([vp9, h264], [np.array([0]), np.array([19])])
    assert errors[0].error_class == ErrorClass.UNSUPPORTED_CODEC and frames[0] is None
    assert errors[1] is None and read_index(np.asarray(frames[1])[0]) == 19


def test_without_a_driver_nvdec_is_unavailable_and_auto_never_picks_it(tmp_path):
    from dfscan.kernels.decode import choose_decoder

    facts = probe(write_index_video(tmp_path / "h", 10, "h264"))
    assert choose_decoder(facts, "nvdec", gpu=False) == "pyav"
    if not nvdec.nvdec_available():
        assert choose_decoder(facts, "nvdec", gpu=True) == "dali-gpu"
        with pytest.raises(nvdec.NvdecUnavailable):
            nvdec.load_pynvvideocodec()


def test_auto_prefers_nvdec_for_8_bit_h264_and_hevc_where_it_loads(tmp_path, monkeypatch):
    from dfscan.kernels.decode import choose_decoder
    from tests.kernels.encodings import HEVC_10_BIT

    monkeypatch.setattr(nvdec, "nvdec_available", lambda: True)
    h264 = probe(write_index_video(tmp_path / "h", 5, "h264"))
    hevc = probe(write_index_video(tmp_path / "e", 5, "hevc", width=256, height=192))
    hevc10 = probe(write_index_video(tmp_path / "e10", 5, HEVC_10_BIT, width=256, height=192))
    vp9 = probe(write_index_video(tmp_path / "v", 5, "vp9", width=256, height=192))
    assert [choose_decoder(f, "auto", gpu=True) for f in (h264, hevc, hevc10, vp9)] == \
        ["nvdec", "nvdec", "dali-gpu", "dali-gpu"]
    assert choose_decoder(h264, "dali-gpu", gpu=True) == "dali-gpu"  # an explicit request is honoured
    assert choose_decoder(vp9, "nvdec", gpu=True) == "dali-gpu"
    assert choose_decoder(h264, "auto", gpu=False) == "pyav"
