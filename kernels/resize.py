"""The one resize rule every backend follows: the whole frame, squashed to S x S (no crop, no
letterbox, as the seed did), RGB, bilinear filtering widened by the reduction factor (antialiased).

PyAV applies it in swscale while converting from YUV; DALI applies it with ``fn.resize``. Both are
triangle filters, so the two CPU backends agree to within a few grey levels (tests measure it).

Face crops (``ClipSpec(crop="face")``) are not squashed by the decoders: each frame arrives at its own
shape, its long side capped (``capped_size``), and the square around the face is cut from it and
resized once by the same filter in Keras ops (``crop_resize``), on the host for host frames and on
the GPU for GPU frames. A square reaching past the frame's edge is padded with black, never moved
or squashed, so the face keeps its place and its proportions in the crop.
"""

from __future__ import annotations

import numpy as np

RESIZE_INTERPOLATION = "BILINEAR"  # swscale name, used by the PyAV backend


def dali_resize(frames, size: int):
    """DALI graph node: (F, H, W, 3) -> (F, S, S, 3), on the node's device."""
    from nvidia.dali import fn, types

    return fn.resize(frames, resize_x=size, resize_y=size, interp_type=types.INTERP_LINEAR, antialias=True)


def capped_size(width: int, height: int, cap: int) -> tuple[int, int]:
    """A frame's (width, height) with its long side at most ``cap``, the aspect kept; never enlarged.
    Every decoder sizes a face-mode frame by this rule, so they all deliver the same shape."""
    scale = min(1.0, cap / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def dali_resize_per_sample(frames, widths, heights):
    """DALI graph node: each sample (F, H, W, 3) -> (F, h, w, 3) at its own size, given per sample as
    scalar float inputs; the filter of ``dali_resize``. A sample already at its size is copied as is."""
    from nvidia.dali import fn, types

    return fn.resize(frames, resize_x=widths, resize_y=heights, interp_type=types.INTERP_LINEAR, antialias=True)


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error between two uint8 clips, in grey levels."""
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def upright(frames, rotation: int):
    """Frames turned as a player shows them (FFmpeg's autorotate): ``rotation`` is the stream's display
    rotation in degrees counter-clockwise. Squashed frames (S x S) turned after the resize equal the
    turned frame resized; a face-mode frame at its own shape turns from coded to displayed shape.
    numpy in, numpy out; a framework tensor (on the GPU) stays one.  (F, H, W, 3) -> (F, H', W', 3)"""
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

    A rectangle may reach past the frame's edges (a face near the border): the part outside is black
    (exactly 0) and the part inside is resized on its own to its share of S x S, rounded to whole
    pixels, so no black bleeds into the face through the filter and the face is neither moved nor
    squashed. (F, H, W, 3) uint8, (F, 4) int -> (F, S, S, 3) uint8 (numpy, or a tensor on the
    frames' device)"""
    rects = np.asarray(rects, dtype=np.int64)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    on_host = isinstance(frames, np.ndarray)
    if not on_host:
        from keras import ops
    crops: list = [None] * len(rects)  # F x (1, S, S, 3)
    # Rectangles inside the frame of one size (a face keeping its size as it moves) are resized in
    # one call: per-frame calls cost a few milliseconds each on a CPU, a batch about one.
    same_size: dict[tuple[int, int], list[int]] = {}
    for i, (x0, y0, x1, y1) in enumerate(rects.tolist()):
        if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
            same_size.setdefault((x1 - x0, y1 - y0), []).append(i)
        else:
            crops[i] = _padded_crop(frames[i:i + 1], rects[i].tolist(), (width, height), size)
    for members in same_size.values():
        cuts = [frames[i, y0:y1, x0:x1] for i, (x0, y0, x1, y1) in zip(members, rects[members].tolist())]
        resized = resize_frames(np.stack(cuts) if on_host else ops.stack(cuts), size, size)  # (M, S, S, 3)
        for row, i in enumerate(members):
            crops[i] = resized[row:row + 1]
    if len(crops) == 1:
        return crops[0]
    return np.concatenate(crops) if on_host else ops.concatenate(crops, axis=0)


def _padded_crop(frame, rect: list[int], frame_size: tuple[int, int], size: int):
    """One frame's rectangle, padded with black where it leaves the frame.  (1, H, W, 3) -> (1, S, S, 3)"""
    x0, y0, x1, y1 = rect
    width, height = frame_size
    inner_x0, inner_y0, inner_x1, inner_y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    scale_x, scale_y = size / (x1 - x0), size / (y1 - y0)
    # Where the part inside the frame lands in the S x S output, in whole output pixels.
    out_x0, out_x1 = round((inner_x0 - x0) * scale_x), round((inner_x1 - x0) * scale_x)
    out_y0, out_y1 = round((inner_y0 - y0) * scale_y), round((inner_y1 - y0) * scale_y)
    on_host = isinstance(frame, np.ndarray)
    if inner_x1 <= inner_x0 or inner_y1 <= inner_y0 or out_x1 <= out_x0 or out_y1 <= out_y0:
        if on_host:
            return np.zeros((1, size, size, 3), dtype=np.uint8)  # nothing of the frame in it
        from keras import ops

        return ops.zeros((1, size, size, 3), dtype="uint8")  # on the default device: the GPU where there is one
    resized = resize_frames(frame[:, inner_y0:inner_y1, inner_x0:inner_x1], out_y1 - out_y0, out_x1 - out_x0)
    if (out_x0, out_y0, out_x1, out_y1) == (0, 0, size, size):
        return resized
    padding = [(0, 0), (out_y0, size - out_y1), (out_x0, size - out_x1), (0, 0)]
    if on_host:
        return np.pad(resized, padding)
    from keras import ops

    return ops.pad(resized, padding)
