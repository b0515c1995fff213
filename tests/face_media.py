"""Test media with a real face, generated at test time: matplotlib's sample portrait of Grace Hopper
(``mpl-data/sample_data/grace_hopper.jpg``), pasted small at a known, moving position into plain
frames and encoded with PyAV. No binary media is committed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import matplotlib
import numpy as np
from PIL import Image

from tests.media import CODECS

# Where MTCNN finds the face in the full 512 x 600 portrait: (x, y, w, h), measured once.
PORTRAIT_FACE = (178.0, 110.0, 173.0, 220.0)
BACKGROUND = 90  # a plain grey backdrop


def portrait() -> np.ndarray:
    """The full portrait.  (600, 512, 3) uint8"""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


def pasted_face_box(left: int, top: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The face's box once the portrait is resized to width x height and pasted at (left, top)."""
    full_height, full_width = portrait().shape[:2]
    x, y, w, h = PORTRAIT_FACE
    sx, sy = width / full_width, height / full_height
    return (left + x * sx, top + y * sy, w * sx, h * sy)


def frame_with_portrait(left: int, top: int, frame_size=(640, 360), portrait_size=(128, 150)) -> np.ndarray:
    """A grey frame with the portrait resized to ``portrait_size`` (w, h) at (left, top).  (H, W, 3)"""
    width, height = frame_size
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    small = np.asarray(Image.fromarray(portrait()).resize(portrait_size, Image.BILINEAR))
    frame[top:top + portrait_size[1], left:left + portrait_size[0]] = small
    return frame


def moving_lefts(frames: int, start: int = 60, end: int = 440) -> list[int]:
    """The portrait's left edge per frame: linear from ``start`` to ``end``."""
    return [round(start + (end - start) * i / max(1, frames - 1)) for i in range(frames)]


def write_face_video(path: Path, frames: int = 30, codec: str = "vp9", top: int = 100,
                     frame_size=(640, 360), portrait_size=(128, 150), lefts: tuple[int, int] = (60, 440),
                     rotation: int = 0, extension: str | None = None) -> Path:
    """A video whose displayed frame i (``frame_size`` w x h) shows the portrait at
    (moving_lefts(frames, *lefts)[i], top). With a display ``rotation`` (degrees counter-clockwise)
    the frames are coded turned the other way, so a player shows them upright."""
    spec = CODECS[codec]
    path = Path(path).with_suffix("." + (extension or spec.extension))
    turns = (rotation // 90) % 4
    coded_width, coded_height = frame_size[::-1] if turns % 2 else frame_size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(spec.encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = coded_width, coded_height, spec.pix_fmt
        stream.options = dict(spec.options)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, left in enumerate(moving_lefts(frames, *lefts)):
            image = np.ascontiguousarray(np.rot90(frame_with_portrait(left, top, frame_size, portrait_size), -turns))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames_video(path: Path, images: list[np.ndarray], codec: str = "vp9") -> Path:
    """A video of the given RGB images (H, W, 3), one frame each, at 25 fps."""
    spec = CODECS[codec]
    path = Path(path).with_suffix("." + spec.extension)
    height, width = images[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(spec.encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, spec.pix_fmt
        stream.options = dict(spec.options)
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_with_portrait_cut(left: int, top: int, frame_size=(640, 360), portrait_size=(128, 150)) -> np.ndarray:
    """As ``frame_with_portrait``, but the portrait may stand partly outside the frame (``left`` or
    ``top`` negative, or past the far edge): only its part inside is drawn.  (H, W, 3)"""
    width, height = frame_size
    frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    small = np.asarray(Image.fromarray(portrait()).resize(portrait_size, Image.BILINEAR))
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + portrait_size[0], width), min(top + portrait_size[1], height)
    frame[y0:y1, x0:x1] = small[y0 - top:y1 - top, x0 - left:x1 - left]
    return frame
