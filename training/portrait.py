"""Synthetic videos of a real face, for face models: matplotlib's sample portrait of Grace Hopper
(``mpl-data/sample_data/grace_hopper.jpg``, read at run time, never copied into the project), cut
to head and shoulders and filmed on a textured backdrop: placed, sized, mirrored, lit and moved
differently in every video, with sensor noise. A real face, so the real detector (MTCNN) finds it.

Fake number i is real number i self-blended (``training.self_blend``, after SBI): the face blended
with a warped, rescaled, colour-shifted copy of itself under a soft mask, then compressed alike. As
in SBI's training pairs, the blend is the only difference to learn.

It is one identity: a model trained on it learns blending traces, and nothing about who is filmed.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
from PIL import Image

from dfscan.training.self_blend import self_blend_video

# Where MTCNN finds the face in the full 512 x 600 portrait: (x, y, w, h), measured once.
PORTRAIT_FACE = (178.0, 110.0, 173.0, 220.0)
# Head and shoulders around it, (x0, y0, x1, y1) in the portrait: what is filmed.
_HEAD = (96, 30, 432, 470)
CRF_RANGE = (18, 30)  # each video's compression is drawn from these H.264/VP9 quality levels


@functools.lru_cache(maxsize=1)
def portrait() -> np.ndarray:
    """The full portrait, shared by every caller (synth, the bench archive, the tests' face media).
    (600, 512, 3) uint8, read-only"""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    pixels.setflags(write=False)
    return pixels


@dataclasses.dataclass(frozen=True)
class PortraitVideo:
    pixels: np.ndarray  # (T, H, W, 3) uint8
    face_boxes: np.ndarray  # (T, 4) float: where the face was drawn, (x, y, w, h) in pixels
    crf: int  # the compression this video is to be encoded with


def _backdrop(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A wall or a room out of focus, larger than the frame so the camera can pan.  (2H, 2W, 3) float"""
    h2, w2 = 2 * height, 2 * width
    yy, xx = np.mgrid[0:h2, 0:w2].astype(np.float32)
    start, end = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
    angle = rng.uniform(0, np.pi)
    ramp = ((np.cos(angle) * xx / w2 + np.sin(angle) * yy / h2) % 1.0)[..., None]
    image = start + (end - start) * ramp
    blobs = rng.normal(0.0, 1.0, (max(2, h2 // 16), max(2, w2 // 16), 3)).astype(np.float32)
    coarse = np.stack([np.asarray(Image.fromarray(blobs[..., c], mode="F").resize((w2, h2), Image.BILINEAR))
                       for c in range(3)], axis=-1)
    return image + rng.uniform(5, 25) * coarse + rng.normal(0.0, 3.0, (h2, w2, 1))


def _head_alpha(height: int, width: int) -> np.ndarray:
    """Feathered ellipse over the head-and-shoulders cut, so no rectangle edge is filmed.  (h, w, 1)"""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.sqrt(((xx + 0.5) / width * 2 - 1) ** 2 + ((yy + 0.5) / height * 2 - 1) ** 2)
    return np.clip((1.0 - r) / 0.15, 0.0, 1.0)[..., None]


def _paste(frame: np.ndarray, image: np.ndarray, alpha: np.ndarray, left: int, top: int) -> None:
    """Blend ``image`` (h, w, 3) with ``alpha`` (h, w, 1) into ``frame`` at (left, top), clipped."""
    height, width = frame.shape[:2]
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + image.shape[1]), min(height, top + image.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    part = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    region = frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = alpha[part] * image[part] + (1 - alpha[part]) * region


def render_portrait_video(seed: int, index: int, fake: bool, frames: int, height: int, width: int,
                          blend_strength: float = 1.0) -> PortraitVideo:
    """One video, deterministic in (seed, index, fake): real, or the same video self-blended when
    ``fake`` (``blend_strength``: see ``training.self_blend.draw_params``)."""
    rng = np.random.default_rng([seed, index, 1])
    x0, y0, x1, y1 = _HEAD
    head = portrait()[y0:y1, x0:x1]
    mirrored = bool(rng.random() < 0.5)
    if mirrored:
        head = head[:, ::-1]
    fx, fy, fw, fh = PORTRAIT_FACE
    face_x = (x1 - fx - fw) if mirrored else (fx - x0)  # the face box's left edge within the cut
    face_y = fy - y0
    face_height = rng.uniform(0.33, 0.5) * min(height, width)  # 40-64 px in a 128 px frame
    scale = face_height / fh  # cut pixels -> frame pixels
    # Filmed at twice the largest size it is drawn at, so each frame's resize only shrinks.
    master_scale = min(1.0, 2 * scale * 1.06)
    master = np.asarray(Image.fromarray(np.ascontiguousarray(head)).resize(
        (max(1, round(head.shape[1] * master_scale)), max(1, round(head.shape[0] * master_scale))), Image.LANCZOS))
    backdrop = _backdrop(rng, height, width)
    pan_start = rng.uniform(0.0, 1.0, 2) * (height, width)
    pan = rng.uniform(-1.0, 1.0, 2) * 0.25 * min(height, width) / max(frames, 1)  # pixels per frame
    centre = rng.uniform(0.38, 0.62, 2) * (width, height)  # the face's centre, (x, y)
    sway = rng.uniform(0.02, 0.06, 2) * (width, height)
    sway_rate, sway_phase = rng.uniform(0.05, 0.15, 2), rng.uniform(0, 2 * np.pi, 2)
    zoom_rate, zoom_phase = rng.uniform(0.02, 0.08), rng.uniform(0, 2 * np.pi)
    gain = rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, 3)  # exposure and white balance
    side_light = rng.uniform(-0.35, 0.35)  # brighter on one side of the frame
    exposure_rate, exposure_phase = rng.uniform(0.02, 0.1), rng.uniform(0, 2 * np.pi)
    noise = rng.uniform(1.0, 4.0)
    crf = int(rng.integers(CRF_RANGE[0], CRF_RANGE[1] + 1))
    light = 1.0 + side_light * (np.arange(width, dtype=np.float32) / width - 0.5)[None, :, None]  # (1, W, 1)

    pixels = np.empty((frames, height, width, 3), dtype=np.uint8)
    boxes = np.empty((frames, 4), dtype=np.float64)
    for t in range(frames):
        py, px = np.clip(pan_start + pan * t, 0, (height, width)).astype(int)
        frame = backdrop[py:py + height, px:px + width].copy()
        zoom = scale * (1.0 + 0.05 * np.sin(zoom_rate * t + zoom_phase))
        size = (max(1, round(head.shape[1] * zoom)), max(1, round(head.shape[0] * zoom)))
        drawn = np.asarray(Image.fromarray(master).resize(size, Image.BILINEAR), dtype=np.float32)
        cx, cy = centre + sway * np.sin(sway_rate * t + sway_phase)
        face_w, face_h = fw * size[0] / head.shape[1], fh * size[1] / head.shape[0]
        left = int(round(cx - face_w / 2 - face_x * size[0] / head.shape[1]))
        top = int(round(cy - face_h / 2 - face_y * size[1] / head.shape[0]))
        _paste(frame, drawn, _head_alpha(size[1], size[0]), left, top)
        boxes[t] = (left + face_x * size[0] / head.shape[1], top + face_y * size[1] / head.shape[0], face_w, face_h)
        exposure = 1.0 + 0.04 * np.sin(exposure_rate * t + exposure_phase)
        frame = frame * gain * light * exposure + rng.normal(0.0, noise, (height, width, 1))
        pixels[t] = np.clip(frame, 0, 255).round().astype(np.uint8)
    if fake:  # blended after capture, as a face-swap is; compressed afterwards, as it is
        pixels = self_blend_video(pixels, boxes, np.random.default_rng([seed, index, 2]), blend_strength)
    return PortraitVideo(pixels=pixels, face_boxes=boxes, crf=crf)
