"""Cut a video down to the GOPs a sampling plan needs, in memory, before DALI sees it.

DALI 2.4's ``fn.decoders.video`` builds no frame index for in-memory input, so it never seeks: to
return frame i it decodes every frame from 0 to i, and each backward or repeated index reopens the
input and starts again at frame 0. Frames 250..269 of a 300-frame clip therefore cost 270 decoded
frames, as many as 20 uniform ones. Measured with DALI's CPU decoder on 720p VP9 (keyint 250):
frames 0..19 take 234 ms a video, frames 250..269 974 ms, uniform 953 ms, the last frame alone 774 ms.

So the packets are copied, never decoded, into a small container that holds only the runs the plan
needs: each run starts at the keyframe at or before a wanted frame and stops at the last packet whose
frame the plan wants. The decoder's work then equals that of a decoder that seeks. Timestamps are
rewritten so the runs follow one another, and each wanted frame gets its index in the cut stream.

Where a run may start depends on what a keyframe resets. H.264 carries picture order across its
recovery-point I-frames, so a run starts at an IDR, and a later run that would start anywhere else
joins the run before it. HEVC carries it across CRA frames that do not open the stream, so a later
run starting at a CRA has it relabelled BLA, as stream splicers do. Leading pictures (shown before
their keyframe, decoded after it) reference the GOP before: HEVC (RASL/RADL) and MPEG-1/2/4
(B-frames, never references) drop those of a run's first keyframe; any other codec starts one GOP
earlier.

The Annex B cut of an MP4/MOV file reads its packets where the probe saw them (``Probe.packets``) with
``os.pread``, so the file is demuxed once, by the probe; every other cut demuxes it again here.

Anything this cannot cut safely (no timestamps, duplicate timestamps, a stream that does not start on
a keyframe, a muxer that refuses the codec) raises ``CutUnsupported``, and the caller feeds the file.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from fractions import Fraction

import av
import numpy as np

from dfscan.kernels.probe import PacketIndex, Probe
from dfscan.kernels.records import (HEVC_CRA, START_CODE, hevc_cra_as_bla, nal_length_size, nal_unit_types, parameter_sets,
                             to_annex_b)

# Muxers whose output DALI reads: MP4 keeps nb_frames in its header (DALI then need not count), and
# Matroska takes every codec the others refuse.
_MP4_CODECS = frozenset({"h264", "hevc", "vp9", "mpeg4"})
# Codecs whose leading pictures nothing after the keyframe references: a run may leave them out.
_LEADING_DROPPABLE = frozenset({"hevc", "mpeg1video", "mpeg2video", "mpeg4"})
_H264_IDR = frozenset({5})
_HEVC_RESET = frozenset({16, 17, 18, 19, 20})  # BLA and IDR: picture order starts afresh
_HEVC_RANDOM_ACCESS = _HEVC_RESET | {HEVC_CRA}  # CRA too: first in a stream, or relabelled BLA


class CutUnsupported(Exception):
    """This stream cannot be cut safely; decode the whole file instead."""


@dataclasses.dataclass(frozen=True)
class GopCut:
    data: np.ndarray  # (bytes,) uint8: a container holding only the needed packets
    frames: np.ndarray  # (U,) int32: each wanted frame's index in the cut stream, ascending
    frames_in_stream: int  # frames the cut stream holds
    runs: int  # decodable runs, each starting at a keyframe


@dataclasses.dataclass
class _Packets:
    packets: object  # av.Packet (or bytes through _FilePackets), decode order; bytes(packets[i]) is the data
    pts: np.ndarray  # (P,) int64, presentation timestamps in the stream's time base
    dts: np.ndarray  # (P,) int64, decode timestamps (pts where the container gives none)
    keys: np.ndarray  # (K,) int64, positions of keyframe packets, ascending
    stream: object  # the demuxed stream (None when read through the probe's packet index)
    extradata: bytes = b""  # the codec's configuration record
    opens: np.ndarray | None = None  # (K,) bool: a stream may begin at this keyframe
    resets: np.ndarray | None = None  # (K,) bool: decoding may jump to this keyframe mid-stream
    relabel: frozenset = frozenset()  # positions of HEVC CRA keyframes to write as BLA after a jump
    length_size: int | None = None  # NAL length prefix bytes (None: Annex B)


def _read_packets(container, last_wanted_pts: int) -> _Packets:
    """Demux (never decode) until two keyframes past the last wanted frame: one ends its GOP, the
    next ends any open-GOP leading pictures that still display before it."""
    stream = container.streams.video[0]
    packets, pts, dts, keys = [], [], [], []
    keys_past_end = 0
    missing_dts = False
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.pts is None:
            raise CutUnsupported("a packet has no presentation timestamp")
        if packet.is_keyframe:
            if packet.pts > last_wanted_pts:
                keys_past_end += 1
                if keys_past_end == 2:
                    break
            keys.append(len(packets))
        packets.append(packet)
        pts.append(int(packet.pts))
        missing_dts = missing_dts or packet.dts is None
        dts.append(int(packet.dts if packet.dts is not None else packet.pts))
    return _checked(packets, np.asarray(pts, dtype=np.int64), np.asarray(dts, dtype=np.int64),
                    np.asarray(keys, dtype=np.int64), missing_dts, stream, bytes(stream.codec_context.extradata or b""))


class _FilePackets:
    """Packets read on demand from the file, where the probe's index says they lie."""

    def __init__(self, fd: int, index: PacketIndex):
        self.fd, self.index = fd, index

    def __getitem__(self, position: int) -> bytes:
        size = int(self.index.size[position])
        data = os.pread(self.fd, size, int(self.index.offset[position]))
        if len(data) != size:
            raise CutUnsupported("the file is shorter than when it was probed")
        return data


def _read_index(fd: int, index: PacketIndex, last_wanted_pts: int) -> _Packets:
    """What ``_read_packets`` returns, from the probe's packet index: no second demux."""
    key_positions = np.flatnonzero(index.keyframe)  # (K',)
    past_end = key_positions[index.pts[key_positions] > last_wanted_pts]
    end = int(past_end[1]) if past_end.size >= 2 else int(index.pts.size)
    keys = key_positions[key_positions < end]
    return _checked(_FilePackets(fd, index), index.pts[:end], index.dts[:end], keys, False, None, index.extradata)


def _checked(packets, pts_array: np.ndarray, dts_array: np.ndarray, keys: np.ndarray, missing_dts: bool, stream,
             extradata: bytes) -> _Packets:
    if not keys.size or keys[0] != 0:
        raise CutUnsupported("the stream does not start with a keyframe")
    if np.unique(pts_array).size != pts_array.size:
        raise CutUnsupported("two packets share a presentation timestamp")
    if missing_dts or (np.diff(dts_array) <= 0).any():
        # Matroska leaves dts out where B-frames reorder; the MP4 muxer needs increasing dts not after
        # pts: the sorted pts, shifted back by the deepest reordering, are exactly that.
        ordered = np.sort(pts_array)
        dts_array = ordered - max(0, int((ordered - pts_array).max()))
    return _Packets(packets, pts_array, dts_array, keys, stream, extradata)


def _mark_entry_points(read: _Packets, codec: str) -> None:
    """Which keyframes may open the cut stream and which a later run may jump to (see above)."""
    opens = np.ones(len(read.keys), dtype=bool)
    resets = np.ones(len(read.keys), dtype=bool)
    relabel: set[int] = set()
    if codec in ("h264", "hevc"):
        length_size = nal_length_size(codec, read.extradata)
        for k, position in enumerate(read.keys.tolist()):
            try:
                types = set(nal_unit_types(codec, bytes(read.packets[position]), length_size))
            except ValueError:
                types = set()  # unreadable: trust it for nothing
            if codec == "h264":
                opens[k] = resets[k] = bool(types & _H264_IDR)
            else:
                opens[k] = resets[k] = bool(types & _HEVC_RANDOM_ACCESS)
                if HEVC_CRA in types:
                    relabel.add(position)
        read.length_size = length_size
    opens[0] = True  # the file itself begins there
    read.opens, read.resets, read.relabel = opens, resets, frozenset(relabel)


def _run_for(read: _Packets, position: int, codec: str) -> np.ndarray:
    """Packet positions, ascending, of a decodable run that displays the frame of the packet at
    ``position``.  # (R,) int64"""
    wanted_pts = int(read.pts[position])
    gop = int(np.searchsorted(read.keys, position, side="right")) - 1
    if read.pts[read.keys[gop]] > wanted_pts and gop > 0:
        gop -= 1  # the wanted frame leads its GOP (displays before its keyframe): start one GOP earlier
    while True:
        while not read.opens[gop]:
            gop -= 1
        first = int(read.keys[gop])
        tail = np.arange(len(read.pts)) >= first
        last = int(np.flatnonzero(tail & (read.pts <= wanted_pts)).max())
        run = np.arange(first, last + 1)
        leading = read.pts[run] < read.pts[first]  # open-GOP pictures that display before the keyframe
        if not leading.any() or gop == 0:
            return run
        if codec in _LEADING_DROPPABLE:
            return run[~leading]
        gop -= 1


def _merge(read: _Packets, runs: list[np.ndarray]) -> list[np.ndarray]:
    """Join runs that touch or overlap, and runs whose keyframe a decoder cannot jump to: those
    decode on from the run before, through the gap."""
    merged: list[np.ndarray] = []
    for run in sorted(runs, key=lambda r: (int(r[0]), int(r[-1]))):
        gop = int(np.searchsorted(read.keys, run[0], side="right")) - 1
        jumpable = bool(read.resets[gop]) and int(read.keys[gop]) == int(run[0])
        if merged and run[0] <= merged[-1][-1] + 1:
            # Overlapping runs: their union, not everything up to the later end, which would bring back
            # the leading pictures a run left out (after a BLA the decoder drops them, and every frame
            # index after them would be off by as many).
            merged[-1] = np.union1d(merged[-1], run)
        elif merged and not jumpable:
            end = max(int(run[-1]), int(merged[-1][-1]))
            merged[-1] = np.union1d(merged[-1], np.arange(int(merged[-1][-1]) + 1, end + 1))
        else:
            merged.append(run)
    return merged


def _relabelled(packet, length_size: int | None):
    """A copy of an HEVC CRA packet written as BLA (kernels.records.hevc_cra_as_bla)."""
    copy = av.Packet(hevc_cra_as_bla(bytes(packet), length_size))
    copy.time_base, copy.is_keyframe = packet.time_base, True
    return copy


def _mux(read: _Packets, runs: list[np.ndarray], step: int, codec: str) -> tuple[bytes, np.ndarray]:
    """Write the runs back to back; returns the bytes and the new pts of every packet written, in the
    written stream's time base (the muxer may choose a coarser one than the source's)."""
    buffer = io.BytesIO()
    format_name = "mp4" if codec in _MP4_CODECS else "matroska"
    new_pts: list[int] = []
    try:
        with av.open(buffer, mode="w", format=format_name) as out:
            stream = out.add_stream_from_template(read.stream)
            offset = 0
            for number, run in enumerate(runs):
                base = int(min(read.pts[run].min(), read.dts[run].min()))
                for position in run.tolist():
                    packet = read.packets[position]
                    if number > 0 and position == int(run[0]) and position in read.relabel:
                        packet = _relabelled(packet, read.length_size)
                    packet.pts = offset + int(read.pts[position]) - base
                    packet.dts = offset + int(read.dts[position]) - base
                    packet.stream = stream
                    new_pts.append(packet.pts)
                    out.mux(packet)
                offset += int(max(read.pts[run].max(), read.dts[run].max())) - base + step
            written_time_base = stream.time_base
    except (av.error.FFmpegError, ValueError) as exc:
        raise CutUnsupported(f"{format_name} muxer refused the packets: {exc}") from None
    scale = Fraction(read.stream.time_base) / Fraction(written_time_base)
    written_pts = [math.floor(pts * scale + Fraction(1, 2)) for pts in new_pts]  # FFmpeg rounds half up
    return buffer.getvalue(), np.asarray(written_pts, dtype=np.int64)


def _cut(probe: Probe, wanted: np.ndarray, write, from_index: bool = False):
    """Plan the runs that ``wanted`` (distinct presentation-order indices, ascending) need and hand
    them to ``write(read, runs, positions, step)`` while the file is open; returns what it returns.
    ``from_index``: read the packets where the probe's index says they lie, if it has one (``write``
    must then need only their bytes, not the demuxed stream)."""
    if probe.frame_pts is None:
        raise CutUnsupported("the probe kept no frame timestamps")
    wanted = np.asarray(wanted, dtype=np.int64)  # (U,)
    wanted_pts = probe.frame_pts[wanted]  # (U,) int64
    if from_index and probe.packets is not None:
        with open(probe.path, "rb") as handle:  # OSError: gone or unreadable, the caller's error row
            now = os.fstat(handle.fileno())
            if (now.st_mtime_ns, now.st_size) != (probe.packets.mtime_ns, probe.size_bytes):
                raise CutUnsupported("the file changed since it was probed")
            read = _read_index(handle.fileno(), probe.packets, int(wanted_pts.max()))
            return _plan(probe, read, wanted_pts, write)
    try:
        # skip_frame=all: opening decodes no frame to guess stream facts (the probe has them), which
        # takes a 1080p H.264 open from about 19 ms to 1 ms.
        container = av.open(probe.path, options={"skip_frame": "all"})
    except av.error.FFmpegError as exc:
        if isinstance(exc, OSError):  # gone or unreadable: the caller's error row, not a fallback
            raise
        raise CutUnsupported(f"cannot open: {exc}") from None
    with container:
        try:
            read = _read_packets(container, int(wanted_pts.max()))
        except av.error.FFmpegError as exc:
            raise CutUnsupported(f"cannot demux: {exc}") from None
        return _plan(probe, read, wanted_pts, write)


def _plan(probe: Probe, read: _Packets, wanted_pts: np.ndarray, write):
    """The runs the wanted frames need, merged, handed to ``write`` (see ``_cut``)."""
    position_of = {pts: position for position, pts in enumerate(read.pts.tolist())}
    positions = [position_of.get(pts) for pts in wanted_pts.tolist()]  # each wanted frame's packet
    if None in positions:
        raise CutUnsupported(f"{positions.count(None)} wanted frames have no packet")
    _mark_entry_points(read, probe.codec)
    runs = _merge(read, [_run_for(read, position, probe.codec) for position in positions])
    diffs = np.diff(np.sort(read.pts))
    step = int(diffs[diffs > 0].min()) if (diffs > 0).any() else 1
    return write(read, runs, positions, step)


def cut_to_gops(probe: Probe, wanted: np.ndarray) -> GopCut:
    """The packets that ``wanted`` (distinct presentation-order indices, ascending) need, remuxed."""

    def write(read: _Packets, runs: list[np.ndarray], positions: list[int], step: int) -> GopCut:
        data, new_pts = _mux(read, runs, step, probe.codec)
        # Where each wanted frame landed: its packet's new pts, ranked among all new pts.
        written = np.concatenate(runs)  # (P',) source positions, in the order written
        order_in_cut = np.argsort(np.argsort(new_pts, kind="stable"), kind="stable")  # rank of each written packet
        rank_of_position = dict(zip(written.tolist(), order_in_cut.tolist()))
        frames = np.asarray([rank_of_position[p] for p in positions], dtype=np.int32)
        if np.unique(new_pts).size != new_pts.size:
            raise CutUnsupported("the written time base merges the timestamps of two frames")
        return GopCut(data=np.frombuffer(data, dtype=np.uint8), frames=frames, frames_in_stream=int(written.size),
                      runs=len(runs))

    return _cut(probe, wanted, write)


@dataclasses.dataclass(frozen=True)
class AnnexBCut:
    """The runs a plan needs as an H.264/HEVC elementary stream, for a decoder fed without a container."""

    access_units: list[bytes]  # decode order; each run's first one carries the parameter sets
    frames: np.ndarray  # (U,) int32: each wanted frame's index among the frames decoded, in output order
    run_starts: np.ndarray  # (R,) int: index in access_units where each run begins

    @property
    def data(self) -> bytes:
        return b"".join(self.access_units)


ANNEX_B_CODECS = frozenset({"h264", "hevc"})


def cut_to_annex_b(probe: Probe, wanted: np.ndarray) -> AnnexBCut:
    """The packets that ``wanted`` needs, as Annex B access units: length prefixes become start
    codes, each run starts with the stream's parameter sets, and a later run's HEVC CRA is written as
    BLA. Runs start where the decoder resets (IDR, BLA), so it outputs each run in display order, one
    run after another: that order gives each wanted frame's index."""
    if probe.codec not in ANNEX_B_CODECS:
        raise CutUnsupported(f"no Annex B stream for {probe.codec}")

    def write(read: _Packets, runs: list[np.ndarray], positions: list[int], step: int) -> AnnexBCut:
        try:
            headers = b"".join(START_CODE + unit for unit in
                               parameter_sets(probe.codec, read.extradata))
            units, run_starts, output_order = [], [], []
            for number, run in enumerate(runs):
                run_starts.append(len(units))
                for position in run.tolist():
                    payload = bytes(read.packets[position])
                    if number > 0 and position == int(run[0]) and position in read.relabel:
                        payload = hevc_cra_as_bla(payload, read.length_size)
                    unit = to_annex_b(payload, read.length_size)
                    units.append(headers + unit if position == int(run[0]) else unit)
                output_order.extend(run[np.argsort(read.pts[run], kind="stable")].tolist())
        except ValueError as exc:  # a malformed NAL length or configuration record
            raise CutUnsupported(f"cannot write Annex B: {exc}") from None
        rank_of_position = {position: rank for rank, position in enumerate(output_order)}
        frames = np.asarray([rank_of_position[p] for p in positions], dtype=np.int32)
        return AnnexBCut(access_units=units, frames=frames, run_starts=np.asarray(run_starts, dtype=np.int64))

    return _cut(probe, wanted, write, from_index=True)
