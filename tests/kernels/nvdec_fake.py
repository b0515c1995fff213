"""PyNvVideoCodec's stand-in for the CPU: the nvdec backend's tests, and those of other floors, run it without a GPU."""

from __future__ import annotations

import ctypes

import av
import numpy as np
import pytest

from dfscan.benchmarks.nvdec_stand_in import FreePyNvVideoCodec
from dfscan.kernels.decode import nvdec


def aligned_empty(shape: tuple) -> np.ndarray:
    """uint8 memory aligned as device allocations are (TensorFlow refuses DLPack memory that is not)."""
    count = int(np.prod(shape))
    raw = np.empty(count + 256, dtype=np.uint8)
    offset = -raw.ctypes.data % 256
    return raw[offset:offset + count].reshape(shape)


class FakeFrame:
    """A decoded NV12 frame in a buffer the decoder reuses: ``(H*3/2, W)`` uint8."""

    def __init__(self, buffer: np.ndarray):
        self.buffer = buffer

    def __dlpack__(self, stream=None):
        if stream in (0, None):
            raise ValueError("Invalid value for stream parameter")  # what PyNvVideoCodec says
        return self.buffer.__dlpack__()

    def __dlpack_device__(self):
        return self.buffer.__dlpack_device__()


class FakeDecoder:
    def __init__(self, codec: str, maxwidth: int, maxheight: int):
        self.codec, self.maxwidth, self.maxheight = codec, maxwidth, maxheight
        self.size = None
        self.videos_started = 0
        self._context = None
        self._pool: list[np.ndarray] = []

    def setReconfigParams(self, width: int, height: int) -> int:
        assert width <= self.maxwidth and height <= self.maxheight
        self.size = (width, height)
        return 0

    def Decode(self, packet):
        if self._context is None:
            self._context = av.CodecContext.create(self.codec, "r")
            self.videos_started += 1
        data = ctypes.string_at(packet.bsl_data, packet.bsl) if packet.bsl else None
        frames = []
        for parsed in self._context.parse(data):
            frames.extend(self._context.decode(parsed))
        if data is None:  # end of stream: drain, and start afresh with the next video
            frames.extend(self._context.decode(None))
            self._context = None
        out = []
        for slot, frame in enumerate(frames):  # like NVDEC: slot i of this call's pool, overwritten next call
            assert (frame.width, frame.height) == self.size, "setReconfigParams was not called for this size"
            nv12 = frame.reformat(format="nv12").to_ndarray()  # (H*3/2, W)
            if slot >= len(self._pool) or self._pool[slot].shape != nv12.shape:
                self._pool[slot:slot + 1] = [aligned_empty(nv12.shape)]
            self._pool[slot][...] = nv12
            out.append(FakeFrame(self._pool[slot]))
        return out


class FakePyNvVideoCodec(FreePyNvVideoCodec):
    """The benchmark's PyNvVideoCodec stand-in, with decoders that really decode (by FFmpeg) and a check
    of how the backend asks for them."""

    decoder_class = FakeDecoder

    def CreateDecoder(self, gpuid, codec, cudacontext, cudastream, usedevicememory, maxwidth, maxheight,
                      outputColorType):
        assert usedevicememory and (cudacontext, cudastream) == (0, 0)
        return super().CreateDecoder(gpuid, codec, cudacontext, cudastream, usedevicememory, maxwidth, maxheight,
                                     outputColorType)


@pytest.fixture
def fake_nvc(monkeypatch):
    fake = FakePyNvVideoCodec()
    monkeypatch.setattr(nvdec, "load_pynvvideocodec", lambda: fake)
    return fake
