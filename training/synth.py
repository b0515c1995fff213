"""A labelled synthetic archive, of one of two kinds:

- ``portrait`` (``training.portrait``): a real face, filmed differently in every video, that the real
  face detector finds; fakes are self-blended after SBI (``training.self_blend``). For face models.
- ``cartoon`` (this module): moving textured scenes with a drawn face-like region, real and
  face-swapped. Cheap, and learnable from whole frames; no face detector finds it.

In the cartoon, real videos render one "identity" (skin tone, skin texture, eyes, mouth, shading) on a moving head
over a panning textured background. Fake videos render the same kind of scene, then paste an inner
face rendered from a *different* identity over it, carrying the traces real face-swaps leave:

- resolution mismatch: the swapped face is rendered small and upsampled (blurry, no skin texture);
- colour mismatch: the swapped face has another skin tone plus a colour cast;
- blending seam: a narrow feathered mask with a visible ring at its edge;
- temporal flicker: the swapped region's brightness and position jitter from frame to frame.

Both classes share global lighting drift and sensor noise, so the model must look at the face region
and not at the scene. Strengths are drawn per video, so fakes are not all alike. Everything comes
from ``numpy.random.default_rng`` seeded by (seed, video index): the same seed gives the same pixels
(and, with single-threaded encoders and bit-exact muxing, the same bytes).

This is embedded data for the demo and the tests: it exercises the pipeline and proves a model can
learn, but it is no substitute for Celeb-DF.
"""

from __future__ import annotations

import dataclasses
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from dfscan.kernels.atomic import atomic_write_bytes
from dfscan.kernels.csv_text import csv_text
from dfscan.kernels.encode import CODECS, encode_video
from dfscan.training.layouts import SYNTHETIC_MARKER
from dfscan.training.portrait import render_portrait_video

KINDS: tuple[str, ...] = ("cartoon", "portrait")

_GOP = "8"  # a keyframe every 8 frames, so keyframe sampling has GOPs to choose from
# The codecs an archive is written in (kernels.encode.CODECS's encoders and containers), with the
# options that make its bytes reproducible, instead of CODECS's own.
ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    # x264's macroblock-tree lookahead gave different bytes (and pixels) for the same frames within
    # one process; without it the output is reproducible.
    "h264": {"crf": "16", "preset": "veryfast", "threads": "1", "x264-params": "rc-lookahead=0:mbtree=0", "g": _GOP},
    "vp9": {"crf": "24", "b": "0", "deadline": "good", "cpu-used": "8", "threads": "1", "row-mt": "0", "g": _GOP},
}


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    videos: int = 40  # total; half real, half fake (real gets the odd one)
    frames_per_video: int = 32
    width: int = 128
    height: int = 128
    codec: str = "h264"  # h264 (.mp4) | vp9 (.webm)
    seed: int = 0
    fps: int = 24
    # The library's default stays the cartoon, which the whole-frame tests learn from; `dfscan synth`
    # and `dfscan demo` ask for the portrait.
    kind: str = "cartoon"
    blend_strength: float = 1.0  # portrait fakes: 1 is SBI's own ranges (training.self_blend.draw_params)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not 0.0 < self.blend_strength <= 4.0:
            raise ValueError(f"blend strength must be above 0 and at most 4, got {self.blend_strength}")
        if self.codec not in ENCODER_OPTIONS:
            raise ValueError(f"unknown codec {self.codec!r}; expected one of {', '.join(ENCODER_OPTIONS)}")
        if self.videos < 2:
            raise ValueError("videos must be at least 2 (one real, one fake)")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ValueError(f"size must be even and at least 32x32, got {self.width}x{self.height}")
        if self.frames_per_video < 1:
            raise ValueError("frames_per_video must be positive")


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like WxH (e.g. 128x128), got {text!r}") from None
    return width, height


@dataclasses.dataclass(frozen=True)
class SynthVideo:
    path: str  # relative to the archive root, with forward slashes
    label: str  # "real" | "fake"


@dataclasses.dataclass(frozen=True)
class _Identity:
    skin: np.ndarray  # (3,) float RGB
    texture: np.ndarray  # (64, 64) float, zero-mean skin detail in face coordinates
    eye_colour: np.ndarray  # (3,)
    mouth_colour: np.ndarray  # (3,)
    eye_spacing: float
    light: float  # side lighting strength, signed


def _identity(rng: np.random.Generator) -> _Identity:
    tone = rng.uniform(0.0, 1.0)  # light to dark skin, on one line through RGB
    skin = np.array([235, 190, 160]) * (1 - tone) + np.array([110, 70, 50]) * tone
    coarse = rng.normal(0.0, 1.0, (16, 16)).astype(np.float32)
    fine = rng.normal(0.0, 1.0, (64, 64)).astype(np.float32)
    texture = 10.0 * _resize(coarse, 64, 64) + 6.0 * fine
    return _Identity(skin=skin + rng.normal(0, 8, 3), texture=texture,
                     eye_colour=rng.uniform(10, 70, 3), mouth_colour=np.array([150, 50, 60]) + rng.normal(0, 15, 3),
                     eye_spacing=rng.uniform(0.32, 0.45), light=rng.uniform(-0.25, 0.25))


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float image (H, W) or (H, W, C) through Pillow's float mode, per channel."""
    if img.ndim == 2:
        return np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((width, height),
                                                                                    Image.BILINEAR))
    return np.stack([_resize(img[..., c], height, width) for c in range(img.shape[-1])], axis=-1)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured scene larger than the frame, so the camera can pan across it.  # (H2, W2, 3) float"""
    h2, w2 = height * 2, width * 2
    yy, xx = np.mgrid[0:h2, 0:w2].astype(np.float32)
    img = np.broadcast_to(rng.uniform(50, 200, 3), (h2, w2, 3)).copy()
    for _ in range(4):  # gratings: stripes and tiles at several scales
        fx, fy = rng.uniform(-0.08, 0.08, 2)
        img += rng.uniform(-16, 16, 3) * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6.3))[..., None]
    blobs = rng.normal(0.0, 1.0, (h2 // 8, w2 // 8, 3)).astype(np.float32)
    img += 12.0 * _resize(blobs, h2, w2)  # soft coloured blobs
    img += rng.normal(0.0, 6.0, (h2, w2, 1))  # fine grain, the same in all channels
    return img


def _render_face(frame: np.ndarray, ident: _Identity, cx: float, cy: float, a: float, b: float,
                 yy: np.ndarray, xx: np.ndarray, blink: bool, scale: float = 1.0) -> np.ndarray:
    """Paint an elliptic face onto ``frame`` and return its soft mask.  # frame (H, W, 3) float"""
    u, v = (xx - cx) / a, (yy - cy) / b  # face coordinates, the unit disc is the face
    r = np.sqrt(u * u + v * v)
    mask = np.clip((1.0 - r) * a / 1.2, 0.0, 1.0) * scale  # about a one-pixel antialiased edge
    tex_y = np.clip(((v + 1) * 32).astype(int), 0, 63)
    tex_x = np.clip(((u + 1) * 32).astype(int), 0, 63)
    shade = 1.0 + ident.light * u - 0.1 * v * v
    face = ident.skin * shade[..., None] + ident.texture[tex_y, tex_x][..., None]
    eye_h = 0.02 if blink else 0.1
    for side in (-1.0, 1.0):
        eye = ((u - side * ident.eye_spacing) / 0.14) ** 2 + ((v + 0.25) / eye_h) ** 2 < 1.0
        face[eye] = ident.eye_colour
    mouth = (u / 0.35) ** 2 + ((v - 0.45) / 0.07) ** 2 < 1.0
    face[mouth] = ident.mouth_colour
    frame[:] = mask[..., None] * face + (1.0 - mask[..., None]) * frame
    return mask


def render_video(seed: int, index: int, fake: bool, frames: int, height: int, width: int) -> np.ndarray:
    """The pixels of one video, deterministic in (seed, index, fake).  # (T, H, W, 3) uint8"""
    rng = np.random.default_rng([seed, index, int(fake)])
    scene = _background(rng, height, width)
    target = _identity(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    pan = rng.uniform(-1.0, 1.0, 2) * 0.25 * min(height, width) / max(frames, 1)  # pixels per frame
    start = rng.uniform(0.25, 0.75, 2) * np.array([height, width])
    a = rng.uniform(0.3, 0.36) * min(height, width)  # head semi-axes
    b = a * rng.uniform(1.15, 1.3)
    centre = rng.uniform(0.4, 0.6, 2) * np.array([height, width])
    sway = rng.uniform(0.02, 0.06, 2) * np.array([height, width])
    phase = rng.uniform(0, 6.3, 2)
    blinks = set(rng.choice(frames, size=max(1, frames // 24), replace=False).tolist())
    lighting = 1.0 + 0.06 * np.sin(np.linspace(0, rng.uniform(1, 4), frames) + rng.uniform(0, 6.3))

    if fake:  # the swap and its traces, with strengths drawn per video
        source = _identity(rng)
        downscale = rng.uniform(3.0, 5.0)
        cast = rng.uniform(-1, 1, 3) * rng.uniform(20, 40)
        flicker = rng.uniform(0.08, 0.15)
        seam = rng.uniform(25, 45) * rng.choice([-1.0, 1.0])
        jitter = rng.uniform(0.5, 1.5)

    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        y0, x0 = (start + pan * t).astype(int)
        frame = scene[y0:y0 + height, x0:x0 + width].copy()
        cy = centre[0] + sway[0] * np.sin(0.15 * t + phase[0])
        cx = centre[1] + sway[1] * np.sin(0.11 * t + phase[1])
        _render_face(frame, target, cx, cy, a, b, yy, xx, blink=t in blinks)
        if fake:
            frame = _paste_swap(frame, source, cx, cy, a, b, yy, xx, t in blinks, rng,
                                downscale, cast, flicker, seam, jitter)
        frame = frame * lighting[t] + rng.normal(0.0, 2.0, (height, width, 1))  # exposure drift, sensor noise
        out[t] = np.clip(frame, 0, 255).round().astype(np.uint8)
    return out


def _paste_swap(frame, source, cx, cy, a, b, yy, xx, blink, rng, downscale, cast, flicker, seam, jitter):
    """Paste the source identity's inner face over the target: low resolution, colour cast, frame-to-
    frame flicker and position jitter, blended through a narrow mask that leaves a seam."""
    height, width = frame.shape[:2]
    dy, dx = rng.normal(0.0, jitter, 2)  # the face tracker's per-frame error
    swapped = frame.copy()
    _render_face(swapped, source, cx + dx, cy + dy, a * 0.85, b * 0.85, yy, xx, blink)
    small = _resize(swapped, max(4, int(height / downscale)), max(4, int(width / downscale)))
    swapped = _resize(small, height, width)  # detail lost: resolution mismatch
    swapped = (swapped + cast) * (1.0 + rng.normal(0.0, flicker))  # colour mismatch, flicker
    u, v = (xx - cx - dx) / (a * 0.8), (yy - cy - dy) / (b * 0.8)
    r = np.sqrt(u * u + v * v)
    alpha = np.clip((1.0 - r) / 0.12, 0.0, 1.0)[..., None]  # narrow feather
    ring = np.exp(-((r - 1.0) / 0.07) ** 2)[..., None]  # the seam along the mask's edge
    return alpha * swapped + (1.0 - alpha) * frame + seam * ring


def encode_archive_video(path: str | os.PathLike, frames: np.ndarray, codec: str = "h264", fps: int = 24,
                         crf: int | None = None) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as an archive's video (``ENCODER_OPTIONS``), bit-exactly
    (no encoder version or dates, one encoder thread), atomically; ``crf``: the quality level
    instead of the codec's default here (lower: better)."""
    encode_video(path, frames, CODECS[codec].with_options(ENCODER_OPTIONS[codec]), fps, crf=crf,
                 time_base=Fraction(1, fps), bitexact=True)


def archive_extension(codec: str) -> str:
    """The file extension, with its dot, of an archive's videos in ``codec``."""
    return "." + CODECS[codec].extension


def synth(out_dir: str | os.PathLike, config: SynthConfig = SynthConfig()) -> list[SynthVideo]:
    """Write ``out_dir/real/*``, ``out_dir/fake/*``, ``out_dir/labels.csv`` and the synthetic marker
    (the config, with its ``kind``); return the videos."""
    root = Path(out_dir)
    extension = archive_extension(config.codec)
    n_fake = config.videos // 2
    n_real = config.videos - n_fake
    videos: list[SynthVideo] = []
    for label, count in (("real", n_real), ("fake", n_fake)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rel = f"{label}/{label}_{config.seed:04d}_{i:04d}{extension}"
            crf = None
            if config.kind == "portrait":
                video = render_portrait_video(config.seed, i, label == "fake", config.frames_per_video,
                                              config.height, config.width, config.blend_strength)
                pixels, crf = video.pixels, video.crf  # compressed as differently as they are filmed
            else:
                pixels = render_video(config.seed, i, label == "fake", config.frames_per_video,
                                      config.height, config.width)  # (T, H, W, 3) uint8
            # Written under a temporary name: a crash never leaves a half-written video behind.
            encode_archive_video(root / rel, pixels, config.codec, config.fps, crf=crf)
            videos.append(SynthVideo(path=rel, label=label))
    write_index(root, videos, {"generator": "dfscan synth", **dataclasses.asdict(config)})
    return videos


def write_index(root: Path, videos: list[SynthVideo], marker: dict) -> None:
    """``labels.csv`` (path, label) and the synthetic marker holding ``marker``, each atomically."""
    table = csv_text(["path", "label"], ([v.path, v.label] for v in videos))  # paths start real/ or fake/
    atomic_write_bytes(root / "labels.csv", table.encode())
    atomic_write_bytes(root / SYNTHETIC_MARKER, (json.dumps(marker, indent=1) + "\n").encode())
