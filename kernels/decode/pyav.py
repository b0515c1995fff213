"""CPU decoding with PyAV (FFmpeg): every codec FFmpeg reads, frame-threaded.

It walks forward through the wanted frames, seeking to the keyframe before a wanted frame whenever
that skips decoding, and never decodes a frame twice. Decoded frames are mapped to exact frame
indices through the probe's presentation-timestamp table.

A damaged file (a packet failed, or a wanted frame never came) is decoded once more as FFmpeg's own
packet loop decodes it: a packet that fails is skipped and decoding goes on, the decoder concealing
the damage from the frames before it. That second pass uses slice threads only (frame threads lose the
frames in flight beside a broken one, as many as the machine has threads) and starts each wanted frame
one keyframe early (a seek to a broken keyframe would lose its whole run).

Frames come out squashed to S x S (``crop="frame"``), or, given ``full_res_cap`` (``crop="face"``),
at the coded frame's own shape with the long side capped, for the face crop to be cut from.
"""

from __future__ import annotations

from typing import Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from dfscan.kernels.decode.base import DecoderBase
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import Probe
from dfscan.kernels.resize import RESIZE_INTERPOLATION
from dfscan.kernels.sampling import decoded_frame_cost, keyframe_at_or_before, split_unique


# Program and transport streams seek by byte offset and report shifted timestamps after a seek.
SEEK_INEXACT_CONTAINERS = frozenset({"mpeg", "mpegts"})


class _SeekMismatch(Exception):
    """A frame after a seek had a timestamp the probe never saw: decode sequentially instead."""


class PyAVDecoder(DecoderBase):
    name = "pyav"

    def __init__(self, size: int, threads: int = 0, full_res_cap: int | None = None):
        self.size = size
        self.full_res_cap = full_res_cap  # None: squash to S x S; else the long side's cap, aspect kept
        self.threads = threads  # 0: FFmpeg picks one thread per core
        self.frames_decoded = 0  # counter for benchmarks: every frame the codec produced
        # Reused across frames and files: building a swscale context costs more than using it
        # (measured at 720p -> 224: 3.0 ms a frame fresh, 0.55 ms reused).
        self._reformatter = VideoReformatter()
        self._spare: dict[tuple[int, ...], list[np.ndarray]] = {}  # given back by ``recycle``, by shape

    def recycle(self, clips: Sequence[np.ndarray]) -> None:
        """Take back full-resolution clips that nobody holds any more (face mode: the crops have been
        cut from them), to decode the next clips of their shape into. A 720p clip of 20 frames is 55 MB,
        more than glibc keeps on its heap, so each fresh one is mapped and faulted in page by page: about
        12 of a clip's 60 ms on a CPU. Only what was given back last is kept (``recycle(())`` drops it),
        so mixed sizes cannot grow it; only arrays that own their memory are taken, never a view."""
        self._spare = {}
        for clip in clips:
            if isinstance(clip, np.ndarray) and clip.dtype == np.uint8 and clip.base is None and clip.ndim == 4:
                self._spare.setdefault(clip.shape, []).append(clip)

    def _frames_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        spare = self._spare.get(shape)
        return spare.pop() if spare else np.empty(shape, dtype=np.uint8)

    def _converter(self, width: int, height: int):
        def to_rgb(frame: av.VideoFrame) -> np.ndarray:
            # One swscale call converts to RGB and resizes (bilinear, scaled to the reduction factor);
            # at the frame's own size it only converts.
            return self._reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                              interpolation=RESIZE_INTERPOLATION).to_ndarray()  # (h, w, 3) uint8
        return to_rgb

    @staticmethod
    def _thread_type(probe: Probe, wanted: np.ndarray) -> str:
        """Frame threads pay off on long runs of frames; on short runs after keyframes (the keyframe
        plan) their start-up and flush at every seek cost more than they give, so use slice threads."""
        if decoded_frame_cost(wanted, probe.keyframes) <= 2 * len(wanted):
            return "SLICE"
        return "AUTO"

    def decode_batch(self, probes: Sequence[Probe], plans: Sequence[np.ndarray]
                     ) -> tuple[list[np.ndarray | None], list[VideoError | None]]:
        """Per file, its clip (``decode_clip``) or None, and its VideoError or None (``kernels.decode.base``);
        a library failure on one file is that file's DECODE_ERROR."""
        frames_out: list[np.ndarray | None] = []
        errors_out: list[VideoError | None] = []
        for probe, plan in zip(probes, plans):
            try:
                frames_out.append(self.decode_clip(probe, plan))
                errors_out.append(None)
            except VideoError as exc:
                frames_out.append(None)
                errors_out.append(exc)
            except Exception as exc:  # noqa: BLE001 - a library failure on one file is data
                frames_out.append(None)
                errors_out.append(VideoError(ErrorClass.DECODE_ERROR, f"{type(exc).__name__}: {exc}"))
        return frames_out, errors_out

    def decode_clip(self, probe: Probe, indices: np.ndarray) -> np.ndarray:
        """Frames ``indices`` of the probed file.  # (F, h, w, 3) uint8: (F, S, S, 3) unless full_res_cap"""
        return self.decode_clip_concealed(probe, indices)[0]

    def decode_clip_concealed(self, probe: Probe, indices: np.ndarray) -> tuple[np.ndarray, int]:
        """Frames ``indices`` of the probed file, and how many of the F were replaced.

        As a player does with a damaged file, a packet that fails to decode is skipped and decoding goes
        on; a wanted frame the decoder never produced is replaced by the nearest decoded frame (the one
        before it, or the first after it). A clip with more than half its frames replaced is refused
        (DECODE_ERROR): too little of it is the video.  # (F, h, w, 3) uint8, int"""
        unique, inverse = split_unique(indices)
        decoded, replaced = self._decode_unique(probe, unique)  # (U, S, S, 3), (U,) bool
        replaced_count = int(replaced[inverse].sum())
        if replaced_count * 2 > len(indices):
            raise VideoError(ErrorClass.DECODE_ERROR, f"only {len(indices) - replaced_count} of {len(indices)} "
                                                      f"sampled frames could be decoded; the file is damaged")
        if np.array_equal(unique, indices):  # no repeats, in order (the plans' usual case): no copy, which
            return decoded, replaced_count  # at full resolution (face mode) costs more than the conversions
        return decoded[inverse], replaced_count  # repeats are copied after decoding, not decoded again

    def _decode_unique(self, probe: Probe, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = np.asarray(probe.keyframes, dtype=np.int64)
        can_seek = (probe.frame_pts is not None and len(probe.frame_pts) == probe.frame_count
                    and probe.container not in SEEK_INEXACT_CONTAINERS)
        own_keys = np.array([keyframe_at_or_before(keys, int(i)) for i in wanted], dtype=np.int64)  # (U,)
        try:
            decoded, replaced, damaged = self._decode_seeking(probe, wanted, own_keys if can_seek else None)
        except VideoError as exc:  # no frame at all: perhaps only frame threads lost them
            if exc.error_class != ErrorClass.DECODE_ERROR:
                raise
            decoded, damaged = None, True
        if not damaged:
            return decoded, replaced
        # A damaged file. Frame threads lose every frame in flight beside a broken one (with 32 threads
        # a file FFmpeg plays lost 13 of 20), and a seek restarts the decoder at a keyframe that may be
        # the broken packet, losing its whole run. Read it again as FFmpeg's own loop does: slice threads
        # only (the same frames on any machine), each wanted frame decoded on from the keyframe before
        # its own, so the decoder conceals a broken keyframe from the frames before it.
        run_up = np.array([keyframe_at_or_before(keys, int(k) - 1) if k > 0 else 0 for k in own_keys],
                          dtype=np.int64)  # (U,)
        return self._decode_seeking(probe, wanted, run_up if can_seek else None, out=decoded, concealing=True)[:2]

    def _decode_seeking(self, probe: Probe, wanted: np.ndarray, starts: np.ndarray | None, **kwargs):
        if starts is not None:
            try:
                return self._decode_pass(probe, wanted, starts, **kwargs)
            except _SeekMismatch:
                pass  # the container's seek landed somewhere its timestamps cannot place
        return self._decode_pass(probe, wanted, None, **kwargs)

    def _decode_pass(self, probe: Probe, wanted: np.ndarray, starts: np.ndarray | None, out: np.ndarray | None = None,
                     concealing: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
        """One forward pass over the file: the frames (U, h, w, 3), which were replaced (U,), and whether the
        file is damaged (a packet failed or a frame was never produced). ``starts`` (U,) names, per wanted
        frame, the keyframe the pass may seek to when it is ahead of the decoder; None decodes from the
        file's start without a seek. ``concealing``: slice threads only."""
        width, height = self.output_size(probe)
        run = _Run(wanted, self._frames_buffer((len(wanted), height, width, 3)) if out is None else out,
                   self._converter(width, height))  # (U, h, w, 3)
        frame_pts = probe.frame_pts
        seeker = _Seeker(starts, frame_pts)
        try:
            container = av.open(probe.path)
        except av.error.FFmpegError as exc:
            raise VideoError(ErrorClass.CONTAINER_INVALID, f"cannot open: {exc}") from None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE" if concealing else self._thread_type(probe, wanted)
            stream.thread_count = self.threads
            position = 0  # index of the next frame a sequential decode would produce
            while run.filled < len(wanted):
                if seeker.wants(run.filled, position):
                    position = seeker.seek(container, stream, run.filled)  # -1: unknown until a frame places it
                position, more = self._decode_run(container, stream, run, position, frame_pts, seeker)
                if not more:
                    break  # the file ended: what is still wanted was never produced
        except av.error.FFmpegError as exc:  # the container itself, not one packet, failed
            if not run.last_frame_seen:
                raise VideoError(ErrorClass.DECODE_ERROR, f"decoder failed: {exc}") from None
        finally:
            container.close()
        decoded, replaced = run.finish()
        return decoded, replaced, run.packets_failed > 0 or bool(replaced.any())

    def _decode_run(self, container, stream, run: "_Run", position, frame_pts, seeker: "_Seeker") -> tuple[int, bool]:
        """Decode forward until every wanted frame is filled or a seek would skip work. Returns the next
        position and whether the file may hold more (False once it ended)."""
        wanted = run.wanted
        for packet in container.demux(stream):  # the last, empty packet flushes the decoder
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError:
                run.packets_failed += 1
                continue  # a damaged packet: skip it, as a player does, and decode on
            for frame in frames:
                self.frames_decoded += 1
                index = position
                found = int(np.searchsorted(frame_pts, frame.pts)) if (frame.pts is not None and
                                                                        frame_pts is not None) else -1
                if 0 <= found < len(frame_pts) and frame_pts[found] == frame.pts:
                    index = found  # timestamps place a frame exactly, also after a skipped packet
                elif seeker.can_seek and position < 0:
                    raise _SeekMismatch()
                if position < 0:
                    seeker.landed(index)
                position = index + 1
                run.offer(index, frame)
                if run.filled == len(wanted):
                    return position, True
                if seeker.wants(run.filled, position):
                    return position, True  # a seek skips frames we do not need
        return position, False


class _Seeker:
    """Where a pass may seek: per wanted frame a keyframe (``starts``), when the decoder is behind it.
    A keyframe the container cannot seek to (its seek lands on an earlier frame: the probe read a
    keyframe flag the container's index does not have, as a damaged packet can show) is never sought
    again, so the pass decodes on instead of seeking back to the same place for ever."""

    def __init__(self, starts: np.ndarray | None, frame_pts: np.ndarray | None):
        self.starts, self.frame_pts = starts, frame_pts  # (U,) keyframe indices | None, (N,) pts
        self.can_seek = starts is not None
        self.refused: set[int] = set()
        self.sought = -1  # the keyframe of the last seek, until its first frame is placed

    def wants(self, filled: int, position: int) -> bool:
        if not self.can_seek:
            return False
        key = int(self.starts[filled])
        return key > position and key not in self.refused

    def seek(self, container, stream, filled: int) -> int:
        self.sought = int(self.starts[filled])
        container.seek(int(self.frame_pts[self.sought]), stream=stream, backward=True, any_frame=False)
        return -1

    def landed(self, index: int) -> None:
        """The first frame after a seek is ``index``."""
        if 0 <= index < self.sought:
            self.refused.add(self.sought)
        self.sought = -1


class _Run:
    """The wanted frames of one pass, filled in order; a wanted frame the decoder skipped is replaced
    by the last decoded frame before it (or, at the very start, the first one after it)."""

    def __init__(self, wanted: np.ndarray, out: np.ndarray, to_rgb):
        self.wanted, self.out, self.to_rgb = wanted, out, to_rgb  # (U,), (U, h, w, 3), frame -> (h, w, 3)
        self.replaced = np.zeros(len(wanted), dtype=bool)  # (U,)
        self.filled = 0
        self.pending: list[int] = []  # missing before any frame was decoded: take the first one after
        self.last_frame_seen = None
        self.packets_failed = 0

    def offer(self, index: int, frame) -> None:
        to_rgb = self.to_rgb
        if self.filled >= len(self.wanted) or index < self.wanted[self.filled]:
            self.last_frame_seen = frame
            return
        rgb = None
        while self.filled < len(self.wanted) and self.wanted[self.filled] <= index:
            if self.wanted[self.filled] < index:  # never produced (a damaged packet was skipped)
                self.replaced[self.filled] = True
                if self.last_frame_seen is None:
                    self.pending.append(self.filled)
                else:
                    self.out[self.filled] = to_rgb(self.last_frame_seen)
            else:
                rgb = to_rgb(frame) if rgb is None else rgb
                self.out[self.filled] = rgb
            self.filled += 1
        self.last_frame_seen = frame
        for position in self.pending:
            self.out[position] = rgb if rgb is not None else to_rgb(frame)
        self.pending = []

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Fill what the file never produced with its last decoded frame."""
        to_rgb = self.to_rgb
        if self.filled < len(self.wanted) or self.pending:
            if self.last_frame_seen is None:
                raise VideoError(ErrorClass.DECODE_ERROR, "the decoder produced no frame")
            tail = to_rgb(self.last_frame_seen)
            for position in self.pending:
                self.out[position] = tail
            self.out[self.filled:] = tail
            self.replaced[self.filled:] = True
            self.filled, self.pending = len(self.wanted), []
        return self.out, self.replaced
