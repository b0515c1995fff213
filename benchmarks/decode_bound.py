"""The pure-decode bound on a CPU: frame-threaded PyAV decodes every frame of every file and converts
nothing. Uniform sampling must decode (almost) every frame of a long-GOP video, so no CPU scanner in
uniform mode can beat this rate."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import av


@dataclasses.dataclass
class BoundResult:
    videos: int
    seconds: float
    frames_decoded: int

    @property
    def videos_per_s(self) -> float:
        return self.videos / self.seconds if self.seconds else 0.0


def decode_every_frame(path: str, threads: int = 0) -> int:
    """Frames decoded; a file FFmpeg cannot read counts 0 (the scanner gives it an error row)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.thread_count = threads
            return sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError):
        return 0


def run_decode_bound(paths: Sequence[str], parallel_files: int = 1) -> BoundResult:
    """``parallel_files`` > 1 decodes several files at once (FFmpeg releases the GIL while decoding)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, parallel_files)) as pool:
        counts = list(pool.map(decode_every_frame, paths))
    return BoundResult(videos=len(paths), seconds=time.perf_counter() - started, frames_decoded=sum(counts))
