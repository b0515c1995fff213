"""A clip's probe and face track, made by hand."""

from __future__ import annotations

import numpy as np

from dfscan.kernels.faces import FaceTrack
from dfscan.kernels.probe import Probe


def probe(width: int, height: int) -> Probe:
    return Probe(path="/a/x.mp4", size_bytes=1, container="mp4", codec="h264", profile="High", width=width,
                 height=height, pix_fmt="yuv420p", bit_depth=8, chroma="420", frame_count=30,
                 frame_count_source="packets", fps=25.0, duration_s=1.2, has_audio=False, keyframes=(0,))


def track(display: tuple[int, int], box: tuple[float, float, float, float] | None, frames: int = 4) -> FaceTrack:
    found = box is not None
    boxes = np.tile(np.array(box if found else (0, 0, 0, 0), dtype=float), (frames, 1))
    return FaceTrack(display_size=display, boxes=boxes, crop_boxes=boxes,
                     detector_boxes=boxes if found else np.full((frames, 4), np.nan),
                     confidences=np.full(frames, 0.99 if found else np.nan), detected=np.full(frames, found),
                     detected_on=frames, margin=1.3)
