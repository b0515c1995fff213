"""CPU decoding with PyAV (FFmpeg): every codec FFmpeg reads, frame-threaded.

It walks forward through the wanted frames, seeking to the keyframe before a wanted frame whenever
that skips decoding, and never decodes a frame twice. Decoded frames are mapped to exact frame
indices through the probe's presentation-timestamp table.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from kernels.errors import ErrorClass, VideoError
from kernels.probe import Probe
from kernels.resize import RESIZE_INTERPOLATION
from kernels.sampling import decoded_frame_cost, keyframe_at_or_before, split_unique


# Program and transport streams seek by byte offset and report shifted timestamps after a seek.
SEEK_INEXACT_CONTAINERS = frozenset({"mpeg", "mpegts"})


class _SeekMismatch(Exception):
    """A frame after a seek had a timestamp the probe never saw: decode sequentially instead."""


class PyAVDecoder:
    name = "pyav"

    def __init__(self, size: int, threads: int = 0):
        self.size = size
        self.threads = threads  # 0: FFmpeg picks one thread per core
        self.frames_decoded = 0  # counter for benchmarks: every frame the codec produced
        # Reused across frames and files: building a swscale context costs more than using it
        # (measured at 720p -> 224: 3.0 ms a frame fresh, 0.55 ms reused).
        self._reformatter = VideoReformatter()

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # One swscale call converts to RGB and resizes (bilinear, scaled to the reduction factor).
        return self._reformatter.reformat(frame, width=self.size, height=self.size, format="rgb24",
                                          interpolation=RESIZE_INTERPOLATION).to_ndarray()  # (S, S, 3) uint8

    @staticmethod
    def _thread_type(probe: Probe, wanted: np.ndarray) -> str:
        """Frame threads pay off on long runs of frames; on short runs after keyframes (the keyframe
        plan) their start-up and flush at every seek cost more than they give, so use slice threads."""
        if decoded_frame_cost(wanted, probe.keyframes) <= 2 * len(wanted):
            return "SLICE"
        return "AUTO"

    def decode_clip(self, probe: Probe, indices: np.ndarray) -> np.ndarray:
        """Frames ``indices`` of the probed file.  # (F, S, S, 3) uint8"""
        unique, inverse = split_unique(indices)
        decoded = self._decode_unique(probe, unique)  # (U, S, S, 3)
        return decoded[inverse]  # repeats are copied after decoding, not decoded again

    def _decode_unique(self, probe: Probe, wanted: np.ndarray) -> np.ndarray:
        can_seek = (probe.frame_pts is not None and len(probe.frame_pts) == probe.frame_count
                    and probe.container not in SEEK_INEXACT_CONTAINERS)
        if can_seek:
            try:
                return self._decode_pass(probe, wanted, can_seek=True)
            except _SeekMismatch:
                pass  # the container's seek landed somewhere its timestamps cannot place
        return self._decode_pass(probe, wanted, can_seek=False)

    def _decode_pass(self, probe: Probe, wanted: np.ndarray, can_seek: bool) -> np.ndarray:
        out = np.empty((len(wanted), self.size, self.size, 3), dtype=np.uint8)  # (U, S, S, 3)
        frame_pts = probe.frame_pts
        keys = np.asarray(probe.keyframes, dtype=np.int64)
        try:
            container = av.open(probe.path)
        except av.error.FFmpegError as exc:
            raise VideoError(ErrorClass.CONTAINER_INVALID, f"cannot open: {exc}") from None
        try:
            stream = container.streams.video[0]
            stream.thread_type = self._thread_type(probe, wanted)
            stream.thread_count = self.threads
            filled = 0
            position = 0  # index of the next frame a sequential decode would produce
            while filled < len(wanted):
                target = int(wanted[filled])
                key = keyframe_at_or_before(keys, target)
                if can_seek and key > position:
                    container.seek(int(frame_pts[key]), stream=stream, backward=True, any_frame=False)
                    position = -1  # unknown until the first frame's timestamp places it
                filled, position = self._decode_run(container, stream, wanted, filled, position, out,
                                                    frame_pts, keys, can_seek)
        except av.error.FFmpegError as exc:
            raise VideoError(ErrorClass.DECODE_ERROR, f"decoder failed: {exc}") from None
        finally:
            container.close()
        return out

    def _decode_run(self, container, stream, wanted, filled, position, out, frame_pts, keys, can_seek):
        """Decode forward until every wanted frame is filled or a seek would skip work."""
        for frame in container.decode(stream):
            self.frames_decoded += 1
            index = position
            if can_seek:
                found = int(np.searchsorted(frame_pts, frame.pts)) if frame.pts is not None else -1
                if 0 <= found < len(frame_pts) and frame_pts[found] == frame.pts:
                    index = found
                elif position < 0:
                    raise _SeekMismatch()
            position = index + 1
            if index < wanted[filled]:
                continue
            while filled < len(wanted) and wanted[filled] <= index:
                if wanted[filled] < index:
                    raise VideoError(ErrorClass.DECODE_ERROR,
                                     f"frame {int(wanted[filled])} was never produced by the decoder")
                out[filled] = self._to_rgb(frame)
                filled += 1
            if filled == len(wanted):
                return filled, position
            next_key = keyframe_at_or_before(keys, int(wanted[filled]))
            if can_seek and next_key > position:
                return filled, position  # a seek to next_key skips frames we do not need
        raise VideoError(ErrorClass.DECODE_ERROR,
                         f"the decoder stopped after frame {position - 1}; frame {int(wanted[filled])} "
                         f"is missing")
