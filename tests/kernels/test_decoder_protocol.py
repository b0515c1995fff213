"""Every decoder backend satisfies the one Decoder interface (kernels.decode.base) and shares its
output size rule. All three are built here on the CPU: none touches DALI or NVDEC before decoding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dfscan.kernels.decode.base import Decoder, DecoderBase
from dfscan.kernels.decode.dali import DaliDecoder
from dfscan.kernels.decode.nvdec import NvdecDecoder
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.errors import ErrorClass
from dfscan.kernels.probe import probe
from dfscan.kernels.sampling import uniform_plan
from tests.media import read_index, write_index_video

BUILDERS = {
    "pyav": lambda cap: PyAVDecoder(32, full_res_cap=cap),
    "dali-cpu": lambda cap: DaliDecoder(32, gpu=False, full_res_cap=cap),
    "dali-gpu": lambda cap: DaliDecoder(32, gpu=True, full_res_cap=cap),
    "nvdec": lambda cap: NvdecDecoder(32, full_res_cap=cap),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_each_backend_is_a_decoder_with_the_shared_output_size(name):
    decoder = BUILDERS[name](None)
    assert isinstance(decoder, Decoder) and decoder.name == name
    assert type(decoder).output_size is DecoderBase.output_size  # defined once, not per backend
    landscape, small = SimpleNamespace(width=1920, height=1080), SimpleNamespace(width=100, height=50)
    assert decoder.output_size(landscape) == (32, 32)
    capped = BUILDERS[name](640)
    assert (capped.output_size(landscape), capped.output_size(small)) == ((640, 360), (100, 50))


def test_a_class_without_the_interface_is_no_decoder():
    class NoRecycle:
        name, frames_decoded = "x", 0

        def decode_batch(self, probes, plans):
            return [], []

        def output_size(self, probe):
            return 1, 1

    assert not isinstance(NoRecycle(), Decoder)


def test_pyav_decodes_a_batch_to_clips_and_errors(tmp_path):
    good = probe(write_index_video(tmp_path / "good", 10, "h264"))
    gone = probe(write_index_video(tmp_path / "gone", 10, "h264"))
    (tmp_path / "gone.mp4").write_text("no longer a video\n")
    frames, errors = PyAVDecoder(32).decode_batch([good, gone], [uniform_plan(10, 4)] * 2)
    assert frames[0].shape == (4, 32, 32, 3) and [read_index(frame) for frame in frames[0]] == [0, 3, 6, 9]
    assert frames[1] is None and errors[0] is None
    assert errors[1].error_class == ErrorClass.CONTAINER_INVALID
