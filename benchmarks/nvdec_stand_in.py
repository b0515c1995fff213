"""Stand-ins for PyNvVideoCodec in the host-path benchmark (benchmarks/host_path.py): a decoder that
costs nothing but counting the pictures of each packet, and the real module with its ``Decode`` calls
timed; and a thread that counts, to tell whether Python's lock is free beside the readers."""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np

_H264_VCL, _HEVC_VCL_LIMIT = frozenset({1, 5}), 32


def pictures_in(codec: str, data: bytes) -> int:
    """Pictures in an Annex B byte string: slices whose first_mb_in_slice (H.264) or
    first_slice_segment_in_pic_flag (HEVC) says they begin a picture."""
    count, position = 0, data.find(b"\x00\x00\x01")
    while 0 <= position < len(data) - 5:
        header = data[position + 3]
        if codec == "h264":
            if header & 0x1F in _H264_VCL and data[position + 4] & 0x80:  # ue(v) 0 is a single 1 bit
                count += 1
        elif (header >> 1) & 0x3F < _HEVC_VCL_LIMIT and data[position + 5] & 0x80:
            count += 1
        position = data.find(b"\x00\x00\x01", position + 3)
    return count


class _Frame:
    """A decoded frame as PyNvVideoCodec hands it out (the stand-in's hand-off never reads it)."""

    def __init__(self, buffer: np.ndarray):
        self.buffer = buffer


class FreeDecoder:
    """A decoder that costs nothing but counting: per packet, as many preallocated frames as it holds
    pictures. The time it spends counting is kept, to be told apart from the host path's own."""

    def __init__(self, codec: str, maxwidth: int, maxheight: int):
        self.codec, self.maxwidth, self.maxheight = codec, maxwidth, maxheight
        self.size = (maxwidth, maxheight)
        self.cpu_s = 0.0
        self._frames: list[_Frame] = []

    def setReconfigParams(self, width: int, height: int) -> int:
        if (width, height) != self.size:
            self.size = (width, height)
            self._frames = []
        return 0

    def Decode(self, packet) -> list:
        started = time.thread_time()
        count = 0
        if packet.bsl:
            count = pictures_in(self.codec, ctypes.string_at(packet.bsl_data, packet.bsl))
        while len(self._frames) < count:
            width, height = self.size
            self._frames.append(_Frame(np.empty((height * 3 // 2, width), dtype=np.uint8)))  # NV12
        self.cpu_s += time.thread_time() - started
        return self._frames[:count]


class FreePyNvVideoCodec:
    """The calls ``kernels.decode.nvdec`` makes of PyNvVideoCodec, answered by ``FreeDecoder``s."""

    class cudaVideoCodec:
        H264, HEVC = "h264", "hevc"

    class OutputColorType:
        NATIVE = 0

    class PacketData:
        def __init__(self):
            self.bsl_data, self.bsl = 0, 0

    decoder_class: type = None  # FreeDecoder, set below; the tests' stand-in decodes for real with its own

    def __init__(self):
        self.decoders: list = []

    def CreateDecoder(self, gpuid, codec, cudacontext, cudastream, usedevicememory, maxwidth, maxheight,
                      outputColorType):
        decoder = self.decoder_class(codec, maxwidth, maxheight)
        self.decoders.append(decoder)
        return decoder


FreePyNvVideoCodec.decoder_class = FreeDecoder


class TimedDecoder:
    """A real PyNvVideoCodec decoder whose ``Decode`` calls are timed: wall and the calling thread's CPU."""

    def __init__(self, inner):
        self.inner = inner
        self.cpu_s = 0.0  # what the stand-in's counter means: CPU spent inside the decoder's calls
        self.wall_s = 0.0

    def setReconfigParams(self, width: int, height: int):
        return self.inner.setReconfigParams(width, height)

    def Decode(self, packet):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.inner.Decode(packet)
        finally:
            self.cpu_s += time.thread_time() - cpu
            self.wall_s += time.perf_counter() - wall


class TimedPyNvVideoCodec:
    """PyNvVideoCodec itself, its decoders wrapped in ``TimedDecoder`` (``--real``: on a GPU)."""

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):
        return getattr(self.module, name)

    def CreateDecoder(self, **kwargs):
        return TimedDecoder(self.module.CreateDecoder(**kwargs))


class Spinner:
    """A Python thread that counts while the readers run: its rate beside them, over its rate alone,
    is the share of time Python's lock was free for it (1.0: never held against it)."""

    def __init__(self):
        self.count, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        while not self._stop.is_set():
            for _ in range(1000):
                pass
            self.count += 1

    def rate(self, seconds: float) -> float:
        before, started = self.count, time.perf_counter()
        time.sleep(seconds)
        return (self.count - before) / (time.perf_counter() - started)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
