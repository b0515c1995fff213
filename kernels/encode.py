"""Encoding frames to a video file with PyAV: the one encode loop and the one codec table that the
synthetic archives (``training.synth``), the bench archives (``benchmarks.archive``) and the test
media (``tests/``) share.

``CODECS`` names every codec the project writes, each in a container that usually carries it, with
the options of the test media: short GOPs (12 frames, so seeks and cuts have keyframes to find) at
a quality where every frame's content survives the codec. A writer that wants other options passes
a Codec of its own (``CODECS[name].with_options(...)``) or extra ``options`` to ``encode_video``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from dfscan.kernels.atomic import atomic_path


@dataclasses.dataclass(frozen=True)
class Codec:
    encoder: str  # FFmpeg's encoder name
    extension: str  # the container's file extension, without the dot
    pix_fmt: str  # what the encoder is fed
    options: Mapping[str, str]  # the encoder's options

    def with_options(self, options: Mapping[str, str]) -> Codec:
        """This codec with ``options`` instead of its own."""
        return dataclasses.replace(self, options=dict(options))


CODECS: dict[str, Codec] = {
    "h264": Codec("libx264", "mp4", "yuv420p", {"g": "12", "bf": "2", "preset": "ultrafast", "crf": "18"}),
    "hevc": Codec("libx265", "mp4", "yuv420p", {"x265-params": "keyint=12:log-level=none", "preset": "ultrafast"}),
    "vp9": Codec("libvpx-vp9", "webm", "yuv420p",
                 {"g": "12", "deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0"}),
    # One thread: libvpx's VP8 encoder threads busy-wait for each other, and on a loaded machine one spun
    # for 700 s of CPU inside vpx_codec_encode over 12 frames of 128x96 (a test timed out, twice).
    "vp8": Codec("libvpx", "webm", "yuv420p", {"g": "12", "deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "2M",
                                               "threads": "1"}),
    "av1": Codec("libsvtav1", "mkv", "yuv420p", {"g": "12", "preset": "8", "crf": "4", "svtav1-params": "enable-tf=0:scm=0"}),
    "mpeg4": Codec("mpeg4", "avi", "yuv420p", {"g": "12", "qscale": "2"}),
    "mjpeg": Codec("mjpeg", "avi", "yuvj420p", {"qscale": "2"}),
    "prores": Codec("prores_ks", "mov", "yuv422p10le", {"profile": "0"}),
    "mpeg2": Codec("mpeg2video", "mpg", "yuv420p", {"g": "12", "qscale": "2"}),
}


def encode_video(path: str | os.PathLike, frames: Iterable[np.ndarray], codec: str | Codec = "h264", fps: int = 25, *,
                 rotation: int = 0, crf: int | None = None, options: Mapping[str, str] | None = None,
                 pts: Sequence[int] | None = None, time_base: Fraction | None = None,
                 size: tuple[int, int] | None = None, bitexact: bool = False) -> Path:
    """Encode RGB frames (each (H, W, 3) uint8; an iterable or a (T, H, W, 3) array; at least one) to
    ``path`` at ``fps``, written under a temporary name and renamed into place (``kernels.atomic``).
    The muxer picks the container from ``path``'s extension (the codec's own where it has none).

    ``codec``: a name in CODECS or a Codec of its own. ``rotation``: a display rotation (degrees
    counter-clockwise) recorded in the container; the frames are stored as given. ``crf`` and
    ``options``: encoder options over the codec's. ``pts`` (in ``time_base``, default 1/fps): each
    frame's timestamp, for a variable frame rate; ``time_base`` also becomes the stream's time base.
    ``size``: the coded (width, height), the frames' own by default; frames of another size are
    scaled to it.
    ``bitexact``: the same frames give the same bytes (one encoder thread, no encoder version or
    dates in the file), for archives that are compared across runs."""
    import av
    from av.codec.context import Flags

    spec = codec if isinstance(codec, Codec) else CODECS[codec]
    path = Path(path)
    merged = {**spec.options, **(options or {}), **({"crf": str(crf)} if crf is not None else {})}
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"no frames to encode to {path}")
    width, height = size or (first.shape[1], first.shape[0])
    frame_time_base = time_base or Fraction(1, fps)
    with atomic_path(path, suffix=path.suffix or "." + spec.extension) as temporary:
        with av.open(temporary, mode="w", options={"fflags": "+bitexact"} if bitexact else {}) as container:
            stream = container.add_stream(spec.encoder, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, spec.pix_fmt
            stream.options = merged
            if time_base is not None:
                stream.time_base = stream.codec_context.time_base = time_base
            if rotation:
                stream.set_display_rotation(rotation)
            if bitexact:
                # One encoder thread, set on the context too (PyAV otherwise asks for one per core),
                # so the bytes cannot depend on scheduling; no encoder version in the stream.
                stream.codec_context.thread_count = 1
                stream.codec_context.thread_type = "NONE"
                stream.codec_context.flags |= Flags.bitexact
            for index, rgb in enumerate(itertools.chain([first], frames)):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                # Explicit timestamps: reordering encoders (SVT-AV1) mangle frames without them.
                frame.pts, frame.time_base = (pts[index] if pts is not None else index), frame_time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
