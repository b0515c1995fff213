"""Test media with a real face, generated at test time: matplotlib's sample portrait of Grace Hopper
(benchmarks/portrait.py, shared with the bench archive), pasted small at a known, moving position
into plain frames and encoded with PyAV. No binary media is committed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

# The portrait and its face's box are the bench archive's too; the face tests import them from here.
from dfscan.benchmarks.portrait import PORTRAIT_FACE, moving_lefts, paste_portrait, pasted_face_box, portrait  # noqa: F401
from dfscan.kernels.encode import CODECS, encode_video


def skip_without_mtcnn_weights() -> None:
    """The face detector reads its weights from the mtcnn wheel (found, never imported: importing it
    imports TensorFlow, which the detector itself does not need)."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("mtcnn") is None:
        pytest.skip("MTCNN's weights come from the mtcnn wheel, which is not installed")

BACKGROUND = 90  # a plain grey backdrop


def frame_with_portrait(left: int, top: int, frame_size=(640, 360), portrait_size=(128, 150)) -> np.ndarray:
    """A grey frame with the portrait resized to ``portrait_size`` (w, h) at (left, top), cut where it
    reaches past an edge.  (H, W, 3)"""
    width, height = frame_size
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    return paste_portrait(frame, left, top, portrait_size)


def write_face_video(path: Path, frames: int = 30, codec: str = "vp9", top: int = 100,
                     frame_size=(640, 360), portrait_size=(128, 150), lefts: tuple[int, int] = (60, 440),
                     rotation: int = 0, extension: str | None = None) -> Path:
    """A video whose displayed frame i (``frame_size`` w x h) shows the portrait at
    (moving_lefts(frames, *lefts)[i], top). With a display ``rotation`` (degrees counter-clockwise)
    the frames are coded turned the other way, so a player shows them upright."""
    turns = (rotation // 90) % 4
    images = [np.rot90(frame_with_portrait(left, top, frame_size, portrait_size), -turns)
              for left in moving_lefts(frames, *lefts)]
    return write_frames_video(path, images, codec, rotation=rotation, extension=extension)


# --- several portraits, or none, at chosen places (tests/scanner/test_face_rows.py) -------------------
@dataclasses.dataclass(frozen=True)
class Placement:
    """One portrait in a video: its left edge per frame (one entry: the same in every frame), its top,
    and its size (w, h). A left or top past an edge cuts the portrait there."""

    lefts: tuple[int, ...]
    top: int
    size: tuple[int, int] = (128, 150)

    def left(self, frame: int) -> int:
        return self.lefts[min(frame, len(self.lefts) - 1)]

    def face_box(self, frame: int) -> tuple[float, float, float, float]:
        """Where the face is in frame ``frame``, as it would be were the frame unbounded."""
        return pasted_face_box(self.left(frame), self.top, *self.size)


def write_portraits_video(path: Path, placements: Sequence[Placement], frames: int = 8, codec: str = "h264",
                          frame_size: tuple[int, int] = (640, 360)) -> Path:
    """A video of ``frames`` grey frames (``frame_size`` w x h) showing each portrait of ``placements``,
    pasted in order (a later one covers an earlier); no placements: a video without a face."""
    width, height = frame_size
    images = []
    for i in range(frames):
        image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        for placement in placements:
            paste_portrait(image, placement.left(i), placement.top, placement.size)
        images.append(image)
    return write_frames_video(path, images, codec)


def write_frames_video(path: Path, images: list[np.ndarray], codec: str = "vp9", rotation: int = 0,
                       extension: str | None = None) -> Path:
    """A video of the given RGB images (H, W, 3) as coded, one frame each, at 25 fps, with a display
    ``rotation`` (degrees counter-clockwise) when given."""
    spec = CODECS[codec]
    path = Path(path).with_suffix("." + (extension or spec.extension))
    return encode_video(path, images, spec, 25, rotation=rotation)
