"""ClipReader's routing and its second try: NVDEC's minimum sizes, and a file a DALI backend fails
retried on PyAV, with the clip saying which decoder answered."""

import dataclasses

import numpy as np

from kernels.clips import ClipReader, ClipSpec
from kernels.decode import choose_decoder
from kernels.decode.dali import DaliDecoder
from kernels.errors import ErrorClass, VideoError
from kernels.probe import probe
from tests.media import read_index, write_index_video


def test_nvdec_minimum_sizes_route_small_files_elsewhere(tmp_path):
    """NVDEC decodes HEVC from 144x144 and VP9 from 128x128 up: smaller files never reach it."""
    small_hevc = probe(write_index_video(tmp_path / "small_hevc", 5, "hevc", width=128, height=96))
    large_hevc = probe(write_index_video(tmp_path / "large_hevc", 5, "hevc", width=256, height=192))
    small_vp9 = probe(write_index_video(tmp_path / "small_vp9", 5, "vp9", width=96, height=96))
    assert choose_decoder(small_hevc, "auto", gpu=True) == "pyav"
    assert choose_decoder(small_hevc, "dali-gpu", gpu=True) == "pyav"
    assert choose_decoder(large_hevc, "auto", gpu=True) == "dali-gpu"
    assert choose_decoder(small_vp9, "auto", gpu=True) == "dali-cpu"
    assert choose_decoder(dataclasses.replace(large_hevc, width=8192, height=8200), "auto", gpu=True) == "pyav"


def test_a_file_dali_fails_is_retried_on_pyav(tmp_path, monkeypatch):
    paths = [str(write_index_video(tmp_path / f"v{i}", 30, "vp9")) for i in range(3)]
    real = DaliDecoder.decode_batch

    def failing_the_second(self, probes, plans):
        frames, errors = real(self, probes, plans)
        errors = [VideoError(ErrorClass.DECODE_ERROR, "DALI: stand-in failure") if p.path == paths[1] else e
                  for p, e in zip(probes, errors)]
        return [None if p.path == paths[1] else f for p, f in zip(probes, frames)], errors

    monkeypatch.setattr(DaliDecoder, "decode_batch", failing_the_second)
    reader = ClipReader(ClipSpec(frames=4, size=32, decoder="dali-cpu"), gpu=False)
    clips = reader.read(paths)
    assert [c.ok for c in clips] == [True, True, True]
    assert [c.decoder for c in clips] == ["dali-cpu", "pyav", "dali-cpu"]
    assert [c.fallback_from for c in clips] == [None, "dali-cpu", None]
    assert [read_index(f) for f in np.asarray(clips[1].frames)] == clips[1].indices.tolist()


def test_a_file_neither_decoder_reads_keeps_pyavs_error(tmp_path, monkeypatch):
    from kernels.decode.pyav import PyAVDecoder

    paths = [str(write_index_video(tmp_path / f"v{i}", 30, "vp9")) for i in range(2)]
    real_dali, real_pyav = DaliDecoder.decode_batch, PyAVDecoder.decode_clip_concealed

    def dali_failing_the_last(self, probes, plans):
        frames, errors = real_dali(self, probes, plans)
        return frames[:-1] + [None], errors[:-1] + [VideoError(ErrorClass.DECODE_ERROR, "DALI: stand-in")]

    def pyav_failing_the_last(self, facts, indices):
        if facts.path == paths[-1]:
            raise VideoError(ErrorClass.DECODE_ERROR, "PyAV: stand-in")
        return real_pyav(self, facts, indices)

    monkeypatch.setattr(DaliDecoder, "decode_batch", dali_failing_the_last)
    monkeypatch.setattr(PyAVDecoder, "decode_clip_concealed", pyav_failing_the_last)
    clips = ClipReader(ClipSpec(frames=4, size=32, decoder="dali-cpu"), gpu=False).read(paths)
    assert clips[0].ok and clips[0].decoder == "dali-cpu"
    assert not clips[1].ok and clips[1].frames is None
    assert (clips[1].error.error_class, clips[1].error.message) == (ErrorClass.DECODE_ERROR, "PyAV: stand-in")
    assert (clips[1].decoder, clips[1].fallback_from) == ("pyav", "dali-cpu")
