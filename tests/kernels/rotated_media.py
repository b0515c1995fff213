"""Phone video with a display rotation, and the frames a player shows of it."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from tests.media import index_image

ENCODERS = {"h264": ("libx264", "yuv420p", {"preset": "ultrafast", "crf": "18", "g": "6"}),
            "vp9": ("libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0", "g": "6"})}
WIDTH, HEIGHT = 128, 64  # landscape as coded; 90 and 270 display it portrait


def write_rotated(path: Path, rotation: int, codec: str = "h264", frames: int = 12) -> Path:
    """Frame i shows index i, coded landscape, with a display rotation (degrees counter-clockwise)."""
    encoder, pix_fmt, options = ENCODERS[codec]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, pix_fmt
        stream.options = dict(options)
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(index_image(i + 1, WIDTH, HEIGHT), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def upright_reference(index: int, rotation: int, size: int) -> np.ndarray:
    """The picture a player shows, squashed to S x S like the decoders' frames.  # (S, S, 3)"""
    from PIL import Image

    turned = np.rot90(index_image(index, WIDTH, HEIGHT), (rotation // 90) % 4)
    return np.asarray(Image.fromarray(np.ascontiguousarray(turned)).resize((size, size), Image.Resampling.BILINEAR))
