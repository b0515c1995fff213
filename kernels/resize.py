"""The one resize rule every backend follows: the whole frame, squashed to S x S (no crop, no
letterbox, as the seed did), RGB, bilinear filtering widened by the reduction factor (antialiased).

PyAV applies it in swscale while converting from YUV; DALI applies it with ``fn.resize``. Both are
triangle filters, so the two CPU backends agree to within a few grey levels (tests measure it).
"""

from __future__ import annotations

import numpy as np

RESIZE_INTERPOLATION = "BILINEAR"  # swscale name, used by the PyAV backend


def dali_resize(frames, size: int):
    """DALI graph node: (F, H, W, 3) -> (F, S, S, 3), on the node's device."""
    from nvidia.dali import fn, types

    return fn.resize(frames, resize_x=size, resize_y=size, interp_type=types.INTERP_LINEAR, antialias=True)


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error between two uint8 clips, in grey levels."""
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def upright(frames, rotation: int):
    """Frames turned as a player shows them (FFmpeg's autorotate): ``rotation`` is the stream's display
    rotation in degrees counter-clockwise. Frames are square (S x S), so turning after the resize equals
    resizing the turned frame. numpy in, numpy out; a framework tensor (on the GPU) stays one.
    (F, S, S, 3) -> (F, S, S, 3)"""
    turns = (int(rotation) // 90) % 4
    if turns == 0:
        return frames
    if isinstance(frames, np.ndarray):
        return np.ascontiguousarray(np.rot90(frames, turns, axes=(1, 2)))
    from keras import ops

    if turns == 2:
        return ops.flip(ops.flip(frames, axis=1), axis=2)
    swapped = ops.swapaxes(frames, 1, 2)
    return ops.flip(swapped, axis=1 if turns == 1 else 2)
