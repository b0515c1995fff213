"""An Annex B stream decoded by FFmpeg: the reference the cut streams are compared with."""

from __future__ import annotations

import av
import numpy as np


def decode_stream(codec: str, access_units: list[bytes]) -> list[np.ndarray]:
    """Every frame the stream decodes to, in output order, as full-size RGB.  # [(H, W, 3) uint8]"""
    context = av.CodecContext.create(codec, "r")
    frames = []
    for packet in context.parse(b"".join(access_units)) + context.parse(None):
        frames.extend(context.decode(packet))
    frames.extend(context.decode(None))
    return [frame.to_ndarray(format="rgb24") for frame in frames]
