"""Sampling plans: which source frames a clip is made of. Pure functions, exact integer indices.

Both plans return F indices in ascending order. A video shorter than F frames repeats its last
frame to fill F, so decoders decode each distinct index once and repeat frames afterwards.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

SamplingMode = Literal["uniform", "keyframe"]
SAMPLING_MODES: tuple[str, ...] = ("uniform", "keyframe")


def _fill_short(frame_count: int, frames: int) -> np.ndarray:
    """Every frame once, then the last frame repeated up to F."""
    head = np.arange(frame_count, dtype=np.int64)
    tail = np.full(frames - frame_count, frame_count - 1, dtype=np.int64)
    return np.concatenate([head, tail])


def uniform_plan(frame_count: int, frames: int = 20) -> np.ndarray:
    """The seed's systematic sampling: ``linspace(0, n - 1, F).round()``.  # (F,) int64"""
    if frame_count < 1:
        raise ValueError(f"a video needs at least one frame, got {frame_count}")
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    if frame_count < frames:
        return _fill_short(frame_count, frames)
    return np.linspace(0, frame_count - 1, frames).round().astype(np.int64)


def keyframe_plan(frame_count: int, keyframes: Sequence[int], frames: int = 20) -> np.ndarray:
    """F frames that need as little decoding as possible: runs starting at keyframes spread across
    the video. Each run is decoded from its keyframe, so the cost is F decoded frames instead of the
    whole video.  # (F,) int64
    """
    if frame_count < 1:
        raise ValueError(f"a video needs at least one frame, got {frame_count}")
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    if frame_count <= frames:
        return _fill_short(frame_count, frames)
    # Frame 0 always starts a decodable run (the first GOP begins there).
    starts = np.unique(np.asarray([0, *[k for k in keyframes if 0 <= k < frame_count]], dtype=np.int64))
    gop_lengths = np.diff(np.append(starts, frame_count))

    # Spread as many runs as frames allow, adding runs until the chosen GOPs can hold F frames.
    runs = min(len(starts), frames)
    while True:
        chosen = np.unique(np.linspace(0, len(starts) - 1, runs).round().astype(np.int64))
        if gop_lengths[chosen].sum() >= frames or runs >= len(starts):
            break
        runs += 1
    if gop_lengths[chosen].sum() < frames:  # cannot happen: all GOPs together hold every frame
        chosen = np.arange(len(starts))

    capacity = gop_lengths[chosen]
    take = np.minimum(capacity, frames // len(chosen))
    extra = frames - int(take.sum())
    while extra > 0:  # earliest runs take the remainder, within their GOPs
        for i in range(len(chosen)):
            if extra == 0:
                break
            if take[i] < capacity[i]:
                take[i] += 1
                extra -= 1
    indices = np.concatenate([starts[c] + np.arange(t) for c, t in zip(chosen, take)])
    return np.sort(indices.astype(np.int64))


def plan_indices(mode: str, frame_count: int, keyframes: Sequence[int], frames: int = 20) -> np.ndarray:
    if mode == "uniform":
        return uniform_plan(frame_count, frames)
    if mode == "keyframe":
        return keyframe_plan(frame_count, keyframes, frames)
    raise ValueError(f"unknown sampling mode {mode!r}; expected one of {', '.join(SAMPLING_MODES)}")


def keyframe_at_or_before(keys: np.ndarray, index: int) -> int:
    """The keyframe a decoder must start from to reach ``index``; ``keys`` sorted, starting at 0."""
    return int(keys[np.searchsorted(keys, index, side="right") - 1]) if len(keys) else 0


def decoded_frame_cost(indices: np.ndarray, keyframes: Sequence[int]) -> int:
    """How many frames a forward decoder that may seek to keyframes must decode to reach ``indices``."""
    keys = np.unique(np.asarray([0, *keyframes], dtype=np.int64))
    cost, position = 0, 0  # position: next frame the decoder would produce without seeking
    for index in np.unique(indices):
        key = keyframe_at_or_before(keys, index)
        start = key if key > position else position
        cost += int(index - start + 1)
        position = int(index) + 1
    return cost


def shift_indices(indices: np.ndarray, offset: int, frame_count: int) -> np.ndarray:
    """Move a plan by ``offset`` frames (training-time temporal jitter), staying inside the video."""
    return np.clip(indices + int(offset), 0, frame_count - 1).astype(np.int64)


def split_unique(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct indices to decode and, for each of the F outputs, which decoded frame it repeats."""
    unique, inverse = np.unique(indices, return_inverse=True)
    return unique, inverse.reshape(-1)
