"""Test media with a real face, generated at test time: matplotlib's sample portrait of Grace Hopper
(benchmarks/portrait.py, shared with the bench archive), pasted small at a known, moving position
into plain frames and encoded with PyAV. No binary media is committed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.portrait import PORTRAIT_FACE, moving_lefts, paste_portrait, pasted_face_box, portrait
from tests.media import CODECS

__all__ = ["PORTRAIT_FACE", "BACKGROUND", "portrait", "pasted_face_box", "frame_with_portrait", "moving_lefts",
           "write_face_video"]

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
