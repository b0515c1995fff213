"""Pitfalls other GPU decoders hit, for the ``nvdec`` backend: a persistent decoder reused for a file of
the same coded size but another display size, an SPS that changes mid-stream, codecs taking turns on
one reader, and chroma formats NVDEC does not read.

Each test runs twice: against the CPU stand-in for PyNvVideoCodec (FFmpeg behind the same calls,
tests/kernels/test_nvdec.py), so the media, PyAV's reference frames and the backend's own path run on
any machine; and, marked ``gpu``, on NVDEC itself, where decoding is bit-exact: the NV12 planes the
backend copies out must equal PyAV's, pixel for pixel.
"""

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.decode import nvdec
from dfscan.kernels.errors import ErrorClass
from dfscan.kernels.probe import probe
from dfscan.kernels.sampling import keyframe_plan, uniform_plan
from tests.gpu_media import (CROPPED_HEIGHTS, coded_height, nv12_frames, sequence_parameter_sets, write_chroma_video,
                             write_cropped_pair, write_sps_change)
from tests.kernels.nvdec_fake import FakePyNvVideoCodec
from tests.media import read_index, write_index_video


class Nv12Nvdec(nvdec.NvdecDecoder):
    """``NvdecDecoder`` handing out each planned frame's NV12 planes on the host, unconverted."""

    def _assemble(self, probe, copies, indices, inverse):
        planes = [np.asarray(copy) for copy in copies]  # (H*3/2, W) uint8 each, copied to the host
        return [planes[i] for i in inverse]


@pytest.fixture(params=["stand-in", pytest.param("nvdec", marks=pytest.mark.gpu)])
def backend(request, monkeypatch):
    """``stand-in``: FFmpeg plays PyNvVideoCodec (CPU); ``nvdec``: NVDEC itself (skipped without a GPU)."""
    if request.param == "stand-in":
        fake = FakePyNvVideoCodec()
        monkeypatch.setattr(nvdec, "load_pynvvideocodec", lambda: fake)
    return request.param


def assert_planes_equal(clip: list, path, plan: np.ndarray) -> None:
    reference = nv12_frames(path)
    assert len(clip) == len(plan)
    for planes, index in zip(clip, plan.tolist()):
        assert planes.shape == reference[index].shape, (path, index)
        np.testing.assert_array_equal(planes, reference[index], err_msg=f"{path} frame {index}")


def test_the_cropped_pair_shares_one_coded_size(tmp_path):
    short, tall = write_cropped_pair(tmp_path)
    assert [probe(p).height for p in (short, tall)] == list(CROPPED_HEIGHTS)
    assert coded_height(short) == coded_height(tall) == 544


def test_a_reused_decoder_crops_each_file_by_its_own_display_size(tmp_path, backend):
    """532, 530, 532 rows through one decoder: each file's frames keep its own rows, every pixel PyAV's."""
    short, tall = write_cropped_pair(tmp_path)
    order = [tall, short, tall]
    plan = np.array([0, 5, 13, 29, 29])
    decoder = Nv12Nvdec(size=32)
    clips, errors = decoder.decode_batch([probe(p) for p in order], [plan] * 3)
    assert errors == [None] * 3
    assert decoder.decoders_created == 1
    for clip, path, rows in zip(clips, order, (532, 530, 532)):
        assert clip[0].shape == (rows * 3 // 2, 320)
        assert_planes_equal(clip, path, plan)


def test_the_sps_change_media_has_two_sequence_parameter_sets(tmp_path):
    path = write_sps_change(tmp_path / "sps.ts")
    first, second = sequence_parameter_sets(path)
    assert (first[1], second[1]) == (66, 100)  # profile_idc: Baseline, then High
    facts = probe(path)
    assert facts.frame_count == 60 and 30 in facts.keyframes


def test_a_stream_whose_sps_changes_mid_file_decodes_to_the_files_frames(tmp_path, backend):
    path = write_sps_change(tmp_path / "sps.ts")
    facts = probe(path)
    plans = [np.array([0, 10, 29, 30, 31, 45, 59]), keyframe_plan(facts.frame_count, facts.keyframes, 8),
             uniform_plan(facts.frame_count, 8), np.array([33, 33, 2])]
    decoder = Nv12Nvdec(size=32)
    clips, errors = decoder.decode_batch([facts] * len(plans), plans)
    assert errors == [None] * len(plans)
    for clip, plan in zip(clips, plans):
        assert_planes_equal(clip, path, plan)


def test_h264_then_hevc_then_h264_on_one_reader(tmp_path, backend):
    """One decoder per codec, kept across the turns: the clips are the plans' frames, every pixel PyAV's."""
    paths = [write_index_video(tmp_path / "a", 40, "h264", width=256, height=192),
             write_index_video(tmp_path / "b", 40, "hevc", width=256, height=192),
             write_index_video(tmp_path / "c", 40, "h264", width=192, height=256)]
    plan = np.array([0, 7, 13, 38])
    decoder = Nv12Nvdec(size=32)
    for path in paths:  # one file a call, as a reader meets them
        (clip,), (error,) = decoder.decode_batch([probe(path)], [plan])
        assert error is None
        assert_planes_equal(clip, path, plan)
    assert decoder.decoders_created == 2
    reader = ClipReader(ClipSpec(frames=4, size=32, sampling="uniform", decoder="nvdec"), gpu=True)
    for path in paths:
        (clip,) = reader.read([str(path)])
        assert (clip.decoder, clip.fallback_from) == ("nvdec", None), clip.fallback_reason
        assert [read_index(f) for f in np.asarray(clip.frames)] == clip.indices.tolist()


@pytest.mark.parametrize("chroma", ["422", "444"])
def test_4_2_2_and_4_4_4_go_to_pyav_with_the_reason(tmp_path, backend, chroma):
    """Asked of nvdec (or auto, or dali-gpu) on a GPU, such a file is read by PyAV and the clip says why;
    handed to the nvdec backend anyway, it is that file's UNSUPPORTED_CODEC, never frames."""
    path = str(write_chroma_video(tmp_path / f"c{chroma}", chroma))
    reason = f"UNSUPPORTED_CODEC: NVDEC reads h264 in 4:2:0 only, not 4:{chroma[1]}:{chroma[2]}"
    for asked, named in (("nvdec", "nvdec"), ("auto", "nvdec"), ("dali-gpu", "dali-gpu")):
        (clip,) = ClipReader(ClipSpec(frames=4, size=32, decoder=asked), gpu=True).read([path])
        assert clip.ok and clip.decoder == "pyav"
        assert (clip.fallback_from, clip.fallback_reason) == (named, reason)
        assert [read_index(f) for f in clip.frames] == clip.indices.tolist()
    frames, errors = nvdec.NvdecDecoder(size=32).decode_batch([probe(path)], [np.array([0, 3])])
    assert frames == [None] and errors[0].error_class == ErrorClass.UNSUPPORTED_CODEC
    assert str(errors[0]) == reason


def test_a_cpu_reader_records_no_refusal(tmp_path):
    """Without a GPU nothing was refused: PyAV is simply the decoder."""
    path = str(write_chroma_video(tmp_path / "c444", "444"))
    (clip,) = ClipReader(ClipSpec(frames=4, size=32, decoder="auto"), gpu=False).read([path])
    assert (clip.decoder, clip.fallback_from, clip.fallback_reason) == ("pyav", None, None)
