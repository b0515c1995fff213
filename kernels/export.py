"""Write a clip as the model sees it: one PNG per sampled frame, plus a contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from kernels.atomic import atomic_path
from kernels.clips import Clip


def _save_png_atomically(image: Image.Image, path: Path) -> None:
    with atomic_path(path, suffix=".png") as temporary:
        image.save(temporary, format="PNG")


def contact_sheet(frames: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Frames tiled in reading order.  (F, S, S, 3) uint8 -> (rows*S', cols*S', 3) uint8"""
    count, height, width, _ = frames.shape
    columns = columns or min(count, 5)
    rows = math.ceil(count / columns)
    sheet = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for i, frame in enumerate(frames):
        row, col = divmod(i, columns)
        sheet[row * (height + gap): row * (height + gap) + height,
              col * (width + gap): col * (width + gap) + width] = frame
    return sheet


def write_clip(clip: Clip, out_dir: Path) -> list[Path]:
    """``frame_<index>.png`` per distinct sampled frame (index = source frame, 6 digits) and ``sheet.png``."""
    if not clip.ok or clip.frames is None:
        raise ValueError(f"clip {clip.path} has no frames: {clip.error}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, frame in zip(clip.indices.tolist(), clip.frames):
        path = out_dir / f"frame_{index:06d}.png"
        if path in written:
            continue  # a short video repeats its last frame; one file says it
        _save_png_atomically(Image.fromarray(np.asarray(frame)), path)
        written.append(path)
    sheet_path = out_dir / "sheet.png"
    _save_png_atomically(Image.fromarray(contact_sheet(np.asarray(clip.frames))), sheet_path)
    written.append(sheet_path)
    return written
