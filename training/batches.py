"""Class-balanced batches: the (clips, one-hot labels) batches that training and evaluation consume."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dfscan.training.augment import AugmentConfig, augment_clip
from dfscan.training.clip_cache import ClipSource
from dfscan.training.layouts import FAKE, REAL, VideoItem

def balanced_indices(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One batch of row numbers, half real and half fake (the odd one drawn from either class).

    Celeb-DF is about 10 % real, so uniform batches would teach "always fake"; this draws both
    classes equally, sampling the minority with replacement.  # (batch_size,) int64
    """
    by_class = [np.flatnonzero(labels == c) for c in (REAL, FAKE)]
    if any(len(rows) == 0 for rows in by_class):
        return rng.choice(len(labels), size=batch_size, replace=len(labels) < batch_size)
    n_real = batch_size // 2 + int(batch_size % 2 and rng.random() < 0.5)
    parts = []
    for rows, n in zip(by_class, (n_real, batch_size - n_real)):
        parts.append(rng.choice(rows, size=n, replace=len(rows) < n))
    return rng.permutation(np.concatenate(parts))


class ClipBatches:
    """Batches of (clips (B, F, S, S, 3) uint8, one-hot labels (B, 2) float32).

    Training (``balanced``): class-balanced draws and, with ``augment``, flips, photometric jitter
    and temporal offsets, all seeded by (seed, epoch, step) so a run is reproducible. Evaluation:
    every item once, in order, unaugmented; the last batch may be short.
    """

    def __init__(self, source: ClipSource, items: Sequence[VideoItem], batch_size: int, *,
                 balanced: bool = False, augment: AugmentConfig | None = None, seed: int = 0,
                 steps: int | None = None):
        self.source = source
        self.items = list(items)
        self.labels = np.array([i.label for i in self.items], dtype=np.int64)
        self.batch_size = batch_size
        self.balanced = balanced
        self.augment = augment if balanced else None  # never augment evaluation batches
        self.seed = seed
        self.epoch = 0
        natural = max(1, -(-len(self.items) // batch_size))
        self.steps = (steps or natural) if balanced else natural

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        offsets = None
        if not self.balanced:
            rows = np.arange(step * self.batch_size, min(len(self.items), (step + 1) * self.batch_size))
        else:
            rng = np.random.default_rng([self.seed, self.epoch, step])
            rows = balanced_indices(self.labels, self.batch_size, rng)
            if self.augment is not None and self.augment.max_offset:
                k = self.augment.max_offset
                offsets = rng.integers(-k, k + 1, size=len(rows))
        clips = self.source.get([self.items[r].path for r in rows], offsets)
        unreadable = [self.items[r].path for c, r in zip(clips, rows) if c is None]
        if unreadable:
            raise RuntimeError(f"cannot read {unreadable[0]} ({self.source.errors.get(unreadable[0])}); "
                               "keep only ClipSource.readable() items")
        x = np.stack(clips)  # (B, F, S, S, 3) uint8
        if self.augment is not None:
            x = np.stack([augment_clip(clip, rng, self.augment) for clip in x])
        y = np.eye(2, dtype=np.float32)[self.labels[rows]]  # (B, 2) one-hot over [real, fake]
        return x, y
