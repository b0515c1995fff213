"""Phone video with a display rotation, and the frames a player shows of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfscan.kernels.encode import CODECS, encode_video
from tests.media import index_image

# Six-frame GOPs, instead of CODECS's own options.
ROTATED_OPTIONS = {"h264": {"preset": "ultrafast", "crf": "18", "g": "6"},
                   "vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0", "g": "6"}}
WIDTH, HEIGHT = 128, 64  # landscape as coded; 90 and 270 display it portrait


def write_rotated(path: Path, rotation: int, codec: str = "h264", frames: int = 12) -> Path:
    """Frame i shows index i, coded landscape, with a display rotation (degrees counter-clockwise)."""
    images = (index_image(i + 1, WIDTH, HEIGHT) for i in range(frames))
    return encode_video(path, images, CODECS[codec].with_options(ROTATED_OPTIONS[codec]), 25, rotation=rotation)


def upright_reference(index: int, rotation: int, size: int) -> np.ndarray:
    """The picture a player shows, squashed to S x S like the decoders' frames.  # (S, S, 3)"""
    from PIL import Image

    turned = np.rot90(index_image(index, WIDTH, HEIGHT), (rotation // 90) % 4)
    return np.asarray(Image.fromarray(np.ascontiguousarray(turned)).resize((size, size), Image.Resampling.BILINEAR))
