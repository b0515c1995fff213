"""Augmentation: training-time flips and photometric jitter of decoded clips."""

from __future__ import annotations

import dataclasses

import numpy as np

@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation. Photometric jitter is drawn once per clip and applied to every
    frame alike: per-frame jitter would imitate the flicker that betrays a face swap."""

    flip: bool = True
    brightness: float = 0.08  # max shift, as a fraction of 255
    contrast: float = 0.15  # max relative change around the clip's mean
    max_offset: int = 2  # temporal jitter of the sampled indices, in frames, either way


def augment_clip(frames: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Flip and brightness/contrast jitter of one clip.  # (F, S, S, 3) uint8 -> same"""
    out = frames.astype(np.float32)
    if config.flip and rng.random() < 0.5:
        out = out[:, :, ::-1]
    if config.contrast:
        mean = out.mean()
        out = (out - mean) * (1.0 + rng.uniform(-config.contrast, config.contrast)) + mean
    if config.brightness:
        out = out + 255.0 * rng.uniform(-config.brightness, config.brightness)
    return np.clip(out, 0, 255).round().astype(np.uint8)
