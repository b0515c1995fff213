"""The benchmarks' real face for generated media (training/portrait.py films it for `dfscan synth`):
matplotlib's sample portrait of Grace Hopper (``mpl-data/sample_data/grace_hopper.jpg``), which MTCNN
finds full size and pasted small. The bench archive pastes it into its videos so face crops are measured
on a face the detector really finds; the tests' face media (tests/face_media.py) paste it the same way.
No binary media is committed."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

# The portrait and its face's box are synth's (training.portrait): one copy of where the face is.
from dfscan.training.portrait import PORTRAIT_FACE, portrait  # noqa: F401 - PORTRAIT_FACE is re-exported


def pasted_face_box(left: int, top: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The face's box once the portrait is resized to width x height and pasted at (left, top)."""
    full_height, full_width = portrait().shape[:2]
    x, y, w, h = PORTRAIT_FACE
    sx, sy = width / full_width, height / full_height
    return (left + x * sx, top + y * sy, w * sx, h * sy)


@functools.lru_cache(maxsize=8)
def resized_portrait(width: int, height: int) -> np.ndarray:
    """The portrait resized to width x height.  (height, width, 3) uint8, read-only"""
    image = np.asarray(Image.fromarray(portrait()).resize((width, height), Image.BILINEAR))
    image.setflags(write=False)
    return image


def paste_portrait(frame: np.ndarray, left: int, top: int, portrait_size: tuple[int, int]) -> np.ndarray:
    """``frame`` with the portrait resized to ``portrait_size`` (w, h) pasted at (left, top), in place.
    A portrait reaching past an edge is cut there (a face at the border), never moved.  (H, W, 3)"""
    height, width = frame.shape[:2]
    small = resized_portrait(*portrait_size)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + portrait_size[0], width), min(top + portrait_size[1], height)
    if x0 < x1 and y0 < y1:
        frame[y0:y1, x0:x1] = small[y0 - top:y1 - top, x0 - left:x1 - left]
    return frame


def moving_lefts(frames: int, start: int = 60, end: int = 440) -> list[int]:
    """The portrait's left edge per frame: linear from ``start`` to ``end``."""
    return [round(start + (end - start) * i / max(1, frames - 1)) for i in range(frames)]
