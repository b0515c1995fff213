"""Test media, generated at test time with PyAV. No binary media is committed.

``write_index_video`` draws each frame's own index as a 4x4 grid of black/white cells, so any
decoded, resized frame tells which source frame it came from.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dfscan.kernels.encode import CODECS, Codec, encode_video
from dfscan.kernels.errors import ErrorClass

GRID = 4  # 4 x 4 cells = 16 bits of frame index
DARK, LIGHT = 16, 235


def index_image(index: int, width: int, height: int) -> np.ndarray:
    """An RGB frame whose 4x4 cells spell ``index`` in binary, most significant bit first.  # (H, W, 3)"""
    bits = [(index >> (GRID * GRID - 1 - b)) & 1 for b in range(GRID * GRID)]
    cells = np.where(np.array(bits).reshape(GRID, GRID) == 1, LIGHT, DARK).astype(np.uint8)
    image = np.kron(cells, np.ones((height // GRID, width // GRID), dtype=np.uint8))
    return np.repeat(image[:, :, None], 3, axis=2)


def read_index(frame: np.ndarray) -> int:
    """The index a decoded (S, S, 3) frame shows: the mean of each cell's centre, thresholded."""
    size_y, size_x = frame.shape[0] // GRID, frame.shape[1] // GRID
    grey = frame.astype(np.float32).mean(axis=2)
    value = 0
    for row in range(GRID):
        for col in range(GRID):
            cell = grey[row * size_y + size_y // 4: (row + 1) * size_y - size_y // 4,
                        col * size_x + size_x // 4: (col + 1) * size_x - size_x // 4]
            value = (value << 1) | int(cell.mean() > (DARK + LIGHT) / 2)
    return value


def write_index_video(path: Path, frames: int, codec: str | Codec = "h264", width: int = 128, height: int = 96,
                      fps: int = 25, pts: list[int] | None = None, time_base: Fraction | None = None) -> Path:
    """A video whose frame i shows i. ``codec`` names one of CODECS or is a Codec of its own (open
    GOPs, other pixel formats). ``pts`` (with ``time_base``) makes the frame rate variable."""
    spec = codec if isinstance(codec, Codec) else CODECS[codec]
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix("." + spec.extension)
    images = (index_image(i, width, height) for i in range(frames))
    return encode_video(path, images, spec, fps, pts=pts, time_base=time_base, size=(width, height))


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An AAC track and no video (its own writer: kernels.encode writes video)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = int(16000 * seconds)
        tone = (0.2 * np.sin(np.arange(samples) / 10.0)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_huge_declared(path: Path, side: int = 12288) -> Path:
    """A few-kilobyte MJPEG .mov whose header declares side x side frames (its one JPEG is tiny). Its
    own writer: it muxes a hand-made packet, never encodes (kernels.encode encodes frames)."""
    jpeg = bytes(av.VideoFrame.from_ndarray(index_image(1, 32, 32), format="rgb24").to_image().tobytes())
    with av.open(str(path), mode="w", format="mov") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuvj420p"
        packet = av.Packet(jpeg[:2048])
        packet.stream, packet.pts, packet.dts, packet.time_base = stream, 0, 0, Fraction(1, 25)
        packet.is_keyframe = True
        container.mux(packet)
    return path


def write_corrupt_corpus(directory: Path) -> dict[str, ErrorClass]:
    """The hostile files of the issue, each with the error class it must produce."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "empty.mp4").write_bytes(b"")
    whole = write_index_video(directory / "whole_tmp.mp4", 30, "h264")
    data = whole.read_bytes()
    os.remove(whole)
    # Without faststart the moov atom comes last: cutting the tail removes it.
    (directory / "truncated_no_moov.mp4").write_bytes(data[: len(data) // 2])
    (directory / "text.mp4").write_text("This is a plain text file renamed to .mp4.\n" * 20)
    (directory / "random.mp4").write_bytes(np.random.default_rng(7).integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    write_audio_only(directory / "audio_only.mp4")
    write_huge_declared(directory / "huge_declared.mov")
    return {
        "empty.mp4": ErrorClass.EMPTY,
        "truncated_no_moov.mp4": ErrorClass.CONTAINER_INVALID,
        "text.mp4": ErrorClass.CONTAINER_INVALID,
        "random.mp4": ErrorClass.CONTAINER_INVALID,
        "audio_only.mp4": ErrorClass.NOT_VIDEO,
        "huge_declared.mov": ErrorClass.LIMIT_EXCEEDED,
    }
