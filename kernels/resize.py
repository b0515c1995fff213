"""The one resize rule every backend follows: the whole frame, squashed to S x S (no crop, no
letterbox, as the seed did), RGB, bilinear filtering widened by the reduction factor (antialiased).

PyAV applies it in swscale while converting from YUV; DALI applies it with ``fn.resize``. Both are
triangle filters, so the two CPU backends agree to within a few grey levels (tests measure it).

Face crops (``ClipSpec(crop="face")``) are cut from the decoded working frame and resized by the same
filter in Keras ops (``crop_resize``), on the host for host frames and on the GPU for GPU frames.
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


def resize_frames(frames, height: int, width: int):
    """Frames resized to ``height`` x ``width`` with the antialiased bilinear filter, in Keras ops so
    the same code runs on the host and, for a GPU tensor, on the GPU. numpy in, numpy out.
    (N, H, W, 3) uint8 -> (N, height, width, 3) uint8"""
    from keras import ops

    resized = ops.image.resize(ops.cast(frames, "float32"), (height, width), interpolation="bilinear",
                               antialias=True, data_format="channels_last")
    out = ops.cast(ops.clip(ops.round(resized), 0, 255), "uint8")
    return ops.convert_to_numpy(out) if isinstance(frames, np.ndarray) else out


def crop_resize(frames, rects: np.ndarray, size: int):
    """Frame i's rectangle ``rects[i]`` = (x0, y0, x1, y1) in whole pixels, cut and resized to S x S.
    Cut from the frame as decoded and resized once, so a crop keeps every pixel the frame has.
    (F, H, W, 3) uint8, (F, 4) int -> (F, S, S, 3) uint8 (numpy, or a tensor on the frames' device)"""
    rects = np.asarray(rects, dtype=np.int64)
    if (rects == rects[0]).all():  # one rectangle for all (the whole frame): one call
        x0, y0, x1, y1 = rects[0].tolist()
        return resize_frames(frames[:, y0:y1, x0:x1], size, size)
    crops = [resize_frames(frames[i:i + 1, y0:y1, x0:x1], size, size)
             for i, (x0, y0, x1, y1) in enumerate(rects.tolist())]  # F x (1, S, S, 3)
    if isinstance(frames, np.ndarray):
        return np.concatenate(crops)
    from keras import ops

    return ops.concatenate(crops, axis=0)
