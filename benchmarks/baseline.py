"""The seed's way, kept as the yardstick: one process, one video at a time. OpenCV reads every
frame, 20 evenly spaced frames are kept and resized, and ``model.predict`` runs on that one video."""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import numpy as np


@dataclasses.dataclass
class BaselineResult:
    videos: int
    failed: int
    seconds: float
    frames_decoded: int
    p_fake: list[float]

    @property
    def videos_per_s(self) -> float:
        return self.videos / self.seconds if self.seconds else 0.0


def read_seed_style(path: str, frames: int, size: int) -> tuple[np.ndarray | None, int]:
    """Every frame read into memory, then ``linspace`` picks.  -> (F, S, S, 3) uint8 RGB, frames read"""
    import cv2

    capture = cv2.VideoCapture(path)
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    if not decoded:
        return None, 0
    picks = np.linspace(0, len(decoded) - 1, frames).round().astype(int)
    clip = np.stack([cv2.cvtColor(cv2.resize(decoded[i], (size, size), interpolation=cv2.INTER_AREA),
                                  cv2.COLOR_BGR2RGB) for i in picks])
    return clip, len(decoded)


def run_baseline(paths: Sequence[str], model, frames: int, size: int, fake_index: int) -> BaselineResult:
    """The seed's loop over ``paths``; ``fake_index`` is the output column of p(fake), from the card."""
    started = time.perf_counter()
    failed, total_frames, scores = 0, 0, []
    for path in paths:
        clip, count = read_seed_style(path, frames, size)
        total_frames += count
        if clip is None:
            failed += 1
            continue
        probabilities = model.predict(clip[None], verbose=0)  # (1, 2), one call per video as the seed did
        scores.append(float(probabilities[0, fake_index]))
    return BaselineResult(videos=len(paths), failed=failed, seconds=time.perf_counter() - started,
                          frames_decoded=total_frames, p_fake=scores)
