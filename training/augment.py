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
    # A square of this side cut at a random place of each frame (0: none): a fully convolutional model
    # (models.FULLY_CONVOLUTIONAL) then learns local traces from many views of a face, not the face.
    spatial_crop: int = 0


def augment_clip(frames: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Spatial crops, flip and brightness/contrast jitter of one clip.
    (F, S, S, 3) uint8 -> (F, S, S, 3), or (F, C, C, 3) with ``spatial_crop`` C"""
    if config.spatial_crop:
        side = config.spatial_crop
        count, height, width = frames.shape[:3]
        if side > min(height, width):
            raise ValueError(f"a spatial crop of {side} pixels does not fit frames of {height}x{width}")
        tops = rng.integers(0, height - side + 1, count)
        lefts = rng.integers(0, width - side + 1, count)
        frames = np.stack([frame[top:top + side, left:left + side]
                           for frame, top, left in zip(frames, tops, lefts)])  # (F, C, C, 3)
    out = frames.astype(np.float32)
    if config.flip and rng.random() < 0.5:
        out = out[:, :, ::-1]
    if config.contrast:
        mean = out.mean()
        out = (out - mean) * (1.0 + rng.uniform(-config.contrast, config.contrast)) + mean
    if config.brightness:
        out = out + 255.0 * rng.uniform(-config.brightness, config.brightness)
    return np.clip(out, 0, 255).round().astype(np.uint8)
