"""Test media for the pitfalls GPU decoders meet, generated at test time with PyAV (no binary media is
committed). Every frame shows its own index (``tests.media.index_image``).

- ``write_cropped_pair``: two H.264 files of one coded size (544 rows: 16-pixel macroblocks) and two
  display sizes (530 and 532 rows, the rest cropped by the SPS): a decoder reused from one to the other
  must crop each by its own SPS.
- ``write_sps_change``: one MPEG-TS stream whose SPS changes half way (another profile, reference count
  and B-frame depth at the same size), the second half's parameter sets in band at its first IDR.
- ``write_chroma_video``: H.264 in 4:2:2 or 4:4:4 (High 4:2:2 / High 4:4:4 Predictive), which NVDEC on
  Hopper does not read.
- ``nv12_frames``: PyAV's decoded frames of a file as NV12, ``(H*3/2, W)`` uint8, the layout NVDEC hands
  out: decoding is bit-exact, so a GPU decoder's planes must equal these.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np

from dfscan.kernels.encode import CODECS, Codec, encode_video
from tests.media import index_image, write_index_video

CROPPED_HEIGHTS = (530, 532)  # both coded as 544 rows
CROPPED_WIDTH = 320

# Two x264 configurations whose sequence parameter sets differ (profile, reference frames, B-frames).
SPS_BEFORE = {"g": "12", "bf": "0", "preset": "ultrafast", "crf": "18", "profile": "baseline",
              "x264-params": "ref=1:log-level=none"}
SPS_AFTER = {"g": "12", "bf": "3", "preset": "medium", "crf": "18", "profile": "high",
             "x264-params": "ref=4:b-pyramid=normal:log-level=none"}


def write_cropped_pair(directory: Path, frames: int = 30) -> list[Path]:
    """[530-row file, 532-row file], H.264 in MP4, CROPPED_WIDTH wide."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [write_index_video(directory / f"rows_{height}", frames, "h264", width=CROPPED_WIDTH, height=height)
            for height in CROPPED_HEIGHTS]


def coded_height(path: str | Path) -> int:
    """The rows the stream codes (its SPS's macroblock rows x 16), before cropping."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        context = container.streams.video[0].codec_context
        return int(getattr(context, "coded_height", 0) or frame.height)


def _encode_ts_part(path: Path, first: int, frames: int, options: dict, width: int, height: int, fps: int) -> None:
    images = (index_image(i, width, height) for i in range(first, first + frames))
    encode_video(path, images, CODECS["h264"].with_options(options), fps, pts=range(first, first + frames))


def write_sps_change(path: Path, frames_each: int = 30, width: int = 256, height: int = 192, fps: int = 25) -> Path:
    """An MPEG-TS file: frames 0.. under SPS_BEFORE, then frames_each.. under SPS_AFTER (timestamps go
    on); MPEG-TS parts concatenate byte for byte, so the second SPS arrives in band mid-stream."""
    path = Path(path)
    first, second = path.with_suffix(".part1.ts"), path.with_suffix(".part2.ts")
    _encode_ts_part(first, 0, frames_each, SPS_BEFORE, width, height, fps)
    _encode_ts_part(second, frames_each, frames_each, SPS_AFTER, width, height, fps)
    path.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()
    return path


def sequence_parameter_sets(path: str | Path) -> list[bytes]:
    """The distinct H.264 SPS NAL units of an Annex B stream (MPEG-TS carries it), in order of appearance."""
    found: list[bytes] = []
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            data = bytes(packet)
            starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
            for begin, end in zip(starts, [*[s - 3 for s in starts[1:]], len(data)]):
                unit = data[begin:end].rstrip(b"\x00")
                if unit and unit[0] & 0x1F == 7 and unit not in found:
                    found.append(unit)
    return found


def write_chroma_video(path: Path, chroma: str, frames: int = 24, width: int = 256, height: int = 192) -> Path:
    """H.264 in 4:2:2 (``"422"``) or 4:4:4 (``"444"``), 8-bit, in MP4."""
    codec = Codec("libx264", "mp4", f"yuv{chroma}p", {"g": "12", "preset": "ultrafast", "crf": "18"})
    return write_index_video(path, frames, codec, width=width, height=height)


def nv12_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of the file in presentation order as NV12.  [(H*3/2, W) uint8]"""
    with av.open(str(path)) as container:
        return [frame.reformat(format="nv12").to_ndarray() for frame in container.decode(video=0)]
