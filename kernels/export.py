"""Write a clip as the model sees it: one PNG per sampled frame, plus a contact sheet. A face clip
(``ClipSpec(crop="face")``) also gets ``faces.json``, each frame's box, and a sheet of the whole
frames with the square the model sees drawn on them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dfscan.kernels.atomic import atomic_path, atomic_write_bytes
from dfscan.kernels.clips import Clip
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.resize import resize_frames, upright

SHEET_SIDE = 256  # the long side of each whole frame on a face clip's sheet
DETECTED, INTERPOLATED, FALLBACK = (0, 220, 0), (255, 200, 0), (230, 0, 0)  # box colours on the sheet


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
    """``frame_<index>.png`` per distinct sampled frame (index = source frame, 6 digits) and ``sheet.png``;
    for a face clip also ``faces.json``, and the sheet shows the boxes on the whole frames."""
    if not clip.ok or clip.frames is None:
        raise ValueError(f"clip {clip.path} has no frames: {clip.error}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, frame in zip(clip.indices.tolist(), np.asarray(clip.frames)):
        path = out_dir / f"frame_{index:06d}.png"
        if path in written:
            continue  # a short video repeats its last frame; one file says it
        _save_png_atomically(Image.fromarray(frame), path)
        written.append(path)
    if clip.faces is not None:
        faces_path = out_dir / "faces.json"
        atomic_write_bytes(faces_path, (json.dumps(faces_document(clip), indent=1) + "\n").encode())
        written.append(faces_path)
        sheet = contact_sheet(boxed_frames(clip))
    else:
        sheet = contact_sheet(np.asarray(clip.frames))
    sheet_path = out_dir / "sheet.png"
    _save_png_atomically(Image.fromarray(sheet), sheet_path)
    written.append(sheet_path)
    return written


def faces_document(clip: Clip) -> dict:
    """What ``faces.json`` holds: the clip's face facts, then per frame its boxes in display pixels."""
    faces = clip.faces
    return {"path": clip.path, "crop": clip.crop, "face_found": faces.found, "face_frames": faces.face_frames,
            "detected_on": faces.detected_on, "face_box": None if faces.median_box is None else list(faces.median_box),
            "margin": faces.margin, "detector": faces.detector, "display_size": list(faces.display_size),
            "frames": faces.records(clip.indices.tolist())}


def boxed_frames(clip: Clip, side: int = SHEET_SIDE) -> np.ndarray:
    """The clip's whole frames, upright at the display's shape (long side ``side``), each with the
    square the model sees (cut off where it reaches past the frame, the part the crop pads with
    black): green where the face was detected, amber where interpolated, a red edge where no face was
    found and the whole frame was used.  (F, h, w, 3) uint8"""
    faces = clip.faces
    width, height = faces.display_size
    scale = side / max(width, height)
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    # Decoded at its own shape, long side at most ``side``; a smaller video is enlarged to it here.
    whole = PyAVDecoder(side, full_res_cap=side).decode_clip_concealed(clip.probe, clip.indices)[0]  # (F, h', w', 3)
    whole = upright(whole, clip.probe.rotation)
    if whole.shape[1:3] != shape:
        whole = resize_frames(whole, *shape)  # (F, h, w, 3)
    boxed = []
    for position, frame in enumerate(whole):
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        if not faces.found:
            draw.rectangle([0, 0, shape[1] - 1, shape[0] - 1], outline=FALLBACK, width=2)
        else:
            x, y, w, h = (faces.crop_boxes[position] * scale).tolist()
            colour = DETECTED if faces.detected[position] else INTERPOLATED
            draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=2)
        boxed.append(np.asarray(image))
    return np.stack(boxed)
