"""Synthetic benchmark archives: panning textured scenes, encoded like real footage (x264 defaults:
long GOPs of up to 250 frames), so decode cost behaves as it does on an archive. Bench archives
carry a real face moving across the scene (benchmarks/portrait.py), so face crops are measured on a
face the detector finds, on the same files as whole frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfscan.benchmarks.portrait import moving_lefts, paste_portrait, portrait
from dfscan.kernels.encode import CODECS, encode_video

RESOLUTIONS = {"240p": (426, 240), "360p": (640, 360), "480p": (854, 480), "720p": (1280, 720),
               "1080p": (1920, 1080)}
# The codecs a bench archive is written in (kernels.encode.CODECS's encoders and containers), with
# options like real footage's (the encoders' long default GOPs) instead of CODECS's own.
ARCHIVE_OPTIONS = {"h264": {"preset": "veryfast", "crf": "23"},
                   "hevc": {"preset": "ultrafast", "crf": "28", "x265-params": "log-level=error"},
                   "vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "g": "250"}}


def parse_resolution(text: str) -> tuple[int, int]:
    """``720p`` or ``WxH`` (even numbers, for 4:2:0)."""
    if text in RESOLUTIONS:
        return RESOLUTIONS[text]
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)} or WxH, got {text!r}") from None
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"resolution {text!r} must be even and at least 16x16")
    return width, height


def face_placement(width: int, height: int, frames: int) -> tuple[list[int], int, tuple[int, int]]:
    """Where a bench video's portrait is: its left edge per frame (crossing the frame), its top, and
    its size (w, h), half the frame's height (the face is about a fifth of it, as in a head shot)."""
    portrait_height = max(2, height // 2)
    full_height, full_width = portrait().shape[:2]
    portrait_width = max(2, round(portrait_height * full_width / full_height))
    margin = width // 20
    lefts = moving_lefts(frames, margin, max(margin, width - portrait_width - margin))
    return lefts, height // 4, (portrait_width, portrait_height)


def write_bench_video(path: Path, width: int, height: int, frames: int, fps: int, codec: str, seed: int,
                      block: int = 8, face: bool = False) -> Path:
    """``block``: the texture's cell size in pixels. 8 (hard-edged cells) codes like busy footage; a
    larger one gives smooth gradients, so two decoders' resized frames can be compared without their
    resize filters' different aliasing dominating. ``face``: the portrait moves across the scene
    (``face_placement``)."""
    rng = np.random.default_rng(seed)
    # A texture larger than the frame, panned by a few pixels per frame: motion the encoder must code.
    texture = rng.integers(0, 256, (height // block + 512 // block + 1, width // block + 512 // block + 1, 3),
                           dtype=np.uint8)
    if block <= 8:
        texture = np.kron(texture, np.ones((block, block, 1), dtype=np.uint8))  # (>= H+512, >= W+512, 3)
    else:  # smooth gradients between the cells: no hard edges for two resize filters to disagree on
        from PIL import Image

        cells = texture.shape[1] * block, texture.shape[0] * block
        texture = np.asarray(Image.fromarray(texture).resize(cells, Image.Resampling.BICUBIC))
    lefts, top, portrait_size = face_placement(width, height, frames)

    def images():
        for i in range(frames):
            dy, dx = (i * 2) % 512, (i * 3) % 512
            image = texture[dy:dy + height, dx:dx + width].copy()  # contiguous, and ours to paste into
            if face:
                paste_portrait(image, lefts[i], top, portrait_size)
            yield image

    return encode_video(path, images(), CODECS[codec].with_options(ARCHIVE_OPTIONS[codec]), fps)


def write_bench_archive(directory: Path, videos: int, resolution: str = "720p", seconds: float = 10.0,
                        codec: str = "h264", fps: int = 30, faces: bool = True) -> list[Path]:
    if codec not in ARCHIVE_OPTIONS:
        raise ValueError(f"codec must be one of {', '.join(ARCHIVE_OPTIONS)}, got {codec!r}")
    width, height = parse_resolution(resolution)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    extension = CODECS[codec].extension
    frames = max(1, int(round(seconds * fps)))
    return [write_bench_video(directory / f"bench_{i:05d}.{extension}", width, height, frames, fps, codec, seed=i,
                              face=faces)
            for i in range(videos)]
