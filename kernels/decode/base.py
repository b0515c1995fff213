"""The interface every decoder backend satisfies (``pyav``, ``dali``, ``nvdec``), and what they share.

A backend decodes a batch of files, each by its plan (the exact frame indices to return), to one clip
per file or that file's error; says the (width, height) its frames come out at; and takes back clips
nobody holds any more, to decode into again (only the PyAV backend reuses them).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from dfscan.kernels.errors import VideoError
from dfscan.kernels.probe import Probe
from dfscan.kernels.resize import capped_size


@runtime_checkable
class Decoder(Protocol):
    name: str  # as DECODERS names it: "pyav", "dali-cpu", "dali-gpu", "nvdec"
    frames_decoded: int  # for benchmarks: every frame the codec produced, wanted or not

    def decode_batch(self, probes: Sequence[Probe], plans: Sequence[np.ndarray]
                     ) -> tuple[list[Any | None], list[VideoError | None]]:
        """Per file, its clip ((F, S, S, 3) uint8, or (F, h, w, 3) with a full-resolution cap; host
        numpy, or a framework tensor on the GPU) or None, and its VideoError or None."""

    def output_size(self, probe: Probe) -> tuple[int, int]:
        """(width, height) of every frame this decoder gives for the file."""

    def recycle(self, clips: Sequence[Any]) -> None:
        """Take back clips nobody holds any more (a decoder may decode the next clips into them)."""


class DecoderBase:
    """What the backends share: the output size rule, and ``recycle`` that keeps nothing. A backend
    sets ``size`` and ``full_res_cap`` (None: squash to S x S; else the long side's cap, aspect kept)."""

    size: int
    full_res_cap: int | None

    def output_size(self, probe: Probe) -> tuple[int, int]:
        """(width, height) of the file's frames: S x S, or the coded size with its long side capped."""
        if self.full_res_cap is None:
            return self.size, self.size
        return capped_size(probe.width, probe.height, self.full_res_cap)

    def recycle(self, clips: Sequence[Any]) -> None:
        """Nothing to take back: this backend's clips are not buffers it decodes into again."""
