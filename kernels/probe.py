"""Probe a video file on the CPU before any decoder touches it.

The probe opens the file with PyAV, reads the stream parameters and demuxes (never decodes) the video
packets to get an exact frame count and the keyframe positions. Limits are checked on the declared
stream parameters, so a tiny file that declares 12288x12288 frames is refused before anything is
allocated for its pixels. All reading runs under a deadline.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.records import mp4_rotation, pix_fmt_name, stream_format


# The extensions that mark a file as a video, for the archive walk and the dataset layouts alike.
VIDEO_EXTENSIONS: tuple[str, ...] = ("mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "wmv",
                                     "flv", "3gp")


@dataclasses.dataclass(frozen=True)
class ProbeLimits:
    max_pixels: int = 8192 * 8192  # per frame, width * height
    max_duration_s: float = 6 * 3600.0
    timeout_s: float = 60.0


@dataclasses.dataclass(frozen=True)
class PacketIndex:
    """The video packets of an MP4/MOV H.264 or HEVC file as its demuxer gave them, in decode order
    (empty ones left out): enough for ``kernels.decode.gops`` to read a run's packets with ``os.pread`` instead of
    opening and demuxing the file a second time. Built only where the bytes at a packet's offset are
    its data (checked on the first packet) and every packet has a pts, a dts and an offset."""

    pts: np.ndarray  # (P,) int64
    dts: np.ndarray  # (P,) int64
    keyframe: np.ndarray  # (P,) bool
    offset: np.ndarray  # (P,) int64, bytes from the start of the file
    size: np.ndarray  # (P,) int64
    extradata: bytes  # the codec's configuration record (avcC, hvcC)
    mtime_ns: int  # the file's, when probed: a changed file is demuxed again


MAX_INDEXED_PACKETS = 1 << 18  # about 2.4 h at 30 fps, 10 MB of index: a longer file is demuxed again instead


class _IndexBuilder:
    """Collects a PacketIndex during the probe's demux; gives up at the first packet it cannot place."""

    def __init__(self):
        self.rows: list[tuple] | None = []

    def add(self, packet) -> None:
        if self.rows is None:
            return
        pts, dts, pos = packet.pts, packet.dts, packet.pos
        if pts is None or dts is None or pos is None or pos < 0 or len(self.rows) >= MAX_INDEXED_PACKETS:
            self.rows = None
            return
        self.rows.append((pts, dts, pos, packet.size, packet.is_keyframe, bytes(packet) if not self.rows else None))

    def build(self, path: str, extradata: bytes | None) -> PacketIndex | None:
        if not self.rows:
            return None
        first = self.rows[0]
        try:
            with open(path, "rb") as handle:
                if os.pread(handle.fileno(), first[3], first[2]) != first[5]:
                    return None  # data elsewhere (an external reference, a transformed sample)
                mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        except OSError:
            return None
        pts, dts, pos, size, key, _ = zip(*self.rows)
        return PacketIndex(pts=np.asarray(pts, dtype=np.int64), dts=np.asarray(dts, dtype=np.int64),
                           keyframe=np.asarray(key, dtype=bool), offset=np.asarray(pos, dtype=np.int64),
                           size=np.asarray(size, dtype=np.int64), extradata=bytes(extradata or b""),
                           mtime_ns=mtime_ns)


@dataclasses.dataclass(frozen=True)
class Probe:
    path: str
    size_bytes: int
    container: str
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str | None
    bit_depth: int | None
    chroma: str | None  # "420", "422", "444", "400" or None when unknown
    frame_count: int
    frame_count_source: str  # "packets": counted by demuxing, exact
    fps: float | None
    duration_s: float | None
    has_audio: bool
    keyframes: tuple[int, ...]  # presentation-order indices of keyframes
    # Presentation timestamps of every frame, sorted: frame index i has pts frame_pts[i].
    # Kept so decoders can map decoded frames (and seek targets) to exact frame indices.
    frame_pts: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    time_base: Fraction | None = dataclasses.field(default=None, repr=False, compare=False)
    # Display rotation, degrees counter-clockwise (0, 90, 180, 270), as a phone's MP4/MOV display matrix
    # says: decoders turn every frame upright by it, as players do.
    rotation: int = 0
    # MP4/MOV: where each video packet lies in the file, so the GOP cut reads them without demuxing again.
    packets: PacketIndex | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    def as_dict(self) -> dict:
        """JSON-ready facts; the per-frame pts table is left out."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("frame_pts", "time_base", "packets")}
        out["keyframes"] = list(self.keyframes)
        out["display_width"], out["display_height"] = self.display_width, self.display_height
        return out


_CONTAINER_BY_EXTENSION = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".3gp": "3gp", ".webm": "webm",
                           ".mkv": "mkv"}


def _container_name(format_name: str, path: str) -> str:
    ext = Path(path).suffix.lower()
    if format_name.startswith("mov,") or format_name.startswith("matroska"):
        return _CONTAINER_BY_EXTENSION.get(ext, format_name.split(",")[0])
    return format_name.split(",")[0]


def _chroma_of(pix_fmt: str | None) -> str | None:
    if not pix_fmt:
        return None
    name = pix_fmt.lower()
    if name.startswith("gray") or name.startswith("y8") or name.startswith("y16"):
        return "400"
    for key, chroma in (("444", "444"), ("gbr", "444"), ("rgb", "444"), ("bgr", "444"), ("422", "422"),
                        ("420", "420"), ("nv12", "420"), ("nv21", "420"), ("p010", "420"), ("p016", "420"),
                        ("411", "411"), ("440", "440")):
        if key in name:
            return chroma
    return None


def _bit_depth_of(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        return max(component.bits for component in av.VideoFormat(pix_fmt).components)
    except (ValueError, TypeError, AttributeError):
        return None


def _check_path(path: str) -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoError(ErrorClass.NOT_FOUND, f"no such file: {path}") from None
    except PermissionError:
        raise VideoError(ErrorClass.PERMISSION, f"permission denied: {path}") from None
    except OSError as exc:
        raise VideoError(ErrorClass.NOT_FOUND, f"cannot stat {path}: {exc.strerror}") from None
    # FIFOs, sockets, devices and directories are never opened: reading them can block forever.
    if not stat.S_ISREG(st.st_mode):
        raise VideoError(ErrorClass.NOT_VIDEO, f"not a regular file: {path}")
    if st.st_size == 0:
        raise VideoError(ErrorClass.EMPTY, f"empty file: {path}")
    if not os.access(path, os.R_OK):
        raise VideoError(ErrorClass.PERMISSION, f"permission denied: {path}")
    return st.st_size


def _open_container(path: str, timeout_s: float, decode_first_frame: bool = True):
    # skip_frame=all: FFmpeg's stream-info pass decodes no frame. Only H.264 then lacks its pixel
    # format, which kernels.records reads from the SPS instead (a 720p open: 9 ms -> 1 ms).
    options = {} if decode_first_frame else {"skip_frame": "all"}
    try:
        return av.open(path, mode="r", timeout=timeout_s, options=options)
    except PermissionError:
        raise VideoError(ErrorClass.PERMISSION, f"permission denied: {path}") from None
    except av.error.InvalidDataError as exc:
        raise VideoError(ErrorClass.CONTAINER_INVALID, f"unreadable container: {exc}") from None
    except av.error.FFmpegError as exc:
        if getattr(exc, "errno", None) == errno.EACCES:
            raise VideoError(ErrorClass.PERMISSION, f"permission denied: {path}") from None
        raise VideoError(ErrorClass.CONTAINER_INVALID, f"cannot open container: {exc}") from None


def _open_with_pixel_format(path: str, timeout_s: float):
    """The open container and its video stream's pixel format, decoding a frame only if need be."""
    container = _open_container(path, timeout_s, decode_first_frame=False)
    if not container.streams.video:
        return container, None
    ctx = container.streams.video[0].codec_context
    if isinstance(ctx.pix_fmt, str):
        return container, ctx.pix_fmt
    known = stream_format(ctx.codec.canonical_name if ctx.codec else "", ctx.extradata)
    if known is not None:
        return container, pix_fmt_name(*known)
    container.close()
    container = _open_container(path, timeout_s)
    pix_fmt = container.streams.video[0].codec_context.pix_fmt if container.streams.video else None
    return container, pix_fmt if isinstance(pix_fmt, str) else None


_MP4_FAMILY = frozenset({"mp4", "mov", "3gp"})
_INDEXED_CODECS = frozenset({"h264", "hevc"})
_MATROSKA_FAMILY = frozenset({"mkv", "webm"})


def _rotation(path: str, container: str, timeout_s: float) -> int:
    """MP4 and MOV (what phones write): the track header's matrix, read without decoding. Matroska
    can carry a display matrix too, which FFmpeg gives only with a decoded frame: decode the first.
    Other containers carry none."""
    if container in _MP4_FAMILY:
        return mp4_rotation(path) or 0
    if container not in _MATROSKA_FAMILY:
        return 0
    try:
        with av.open(path, mode="r", timeout=timeout_s) as opened:
            for frame in opened.decode(video=0):
                return int(round((frame.rotation or 0) / 90.0)) * 90 % 360
    except (av.error.FFmpegError, ValueError):
        pass  # the probe's own pass reports a broken stream; the rotation is then simply unknown
    return 0


def _probe_now(path: str, limits: ProbeLimits, deadline: float) -> Probe:
    size_bytes = _check_path(path)
    container, pix_fmt = _open_with_pixel_format(path, limits.timeout_s)
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise VideoError(ErrorClass.NOT_VIDEO, "no video stream" + (f" (streams: {', '.join(kinds)})"
                                                                        if kinds else ""))
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > limits.max_pixels:
            raise VideoError(ErrorClass.LIMIT_EXCEEDED,
                             f"frame {width}x{height} exceeds the limit of {limits.max_pixels} pixels")
        if width <= 0 or height <= 0:
            raise VideoError(ErrorClass.CONTAINER_INVALID, "video stream declares no frame size")
        if ctx.codec is None:
            raise VideoError(ErrorClass.UNSUPPORTED_CODEC, "no decoder at all reads this video stream")
        codec = ctx.codec.canonical_name  # "av1", not the decoder's name "libdav1d"

        time_base = stream.time_base
        declared_duration_s = None
        if container.duration:
            declared_duration_s = container.duration / 1_000_000
        elif stream.duration and time_base:
            declared_duration_s = float(stream.duration * time_base)
        if declared_duration_s is not None and declared_duration_s > limits.max_duration_s:
            raise VideoError(ErrorClass.LIMIT_EXCEEDED,
                             f"duration {declared_duration_s:.0f} s exceeds the limit of "
                             f"{limits.max_duration_s:.0f} s")

        # Headers of mkv, webm, mpg and ts often say 0 frames, and others can be wrong: count the
        # video packets instead (demuxing reads no pixels) and remember which are keyframes.
        pts_values: list[int] = []
        key_pts: list[int] = []
        order = 0
        container_name = _container_name(container.format.name, path)
        # What the nvdec backend's cut reads instead of demuxing again (kernels.decode.gops).
        index = _IndexBuilder() if container_name in _MP4_FAMILY and codec in _INDEXED_CODECS else None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if time.monotonic() > deadline:
                    raise VideoError(ErrorClass.TIMEOUT, f"probe took longer than {limits.timeout_s:.0f} s")
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is None:
                    pts = order  # no timestamps at all: decode order is presentation order
                pts_values.append(int(pts))
                if packet.is_keyframe:
                    key_pts.append(int(pts))
                if index is not None:
                    index.add(packet)
                order += 1
        except av.error.FFmpegError as exc:
            if not pts_values:
                raise VideoError(ErrorClass.CONTAINER_INVALID, f"cannot read packets: {exc}") from None
            # A damaged tail: keep the frames that can be read.
        if not pts_values:
            raise VideoError(ErrorClass.DECODE_ERROR, "the video stream holds no frames")

        frame_pts = np.unique(np.asarray(pts_values, dtype=np.int64))  # presentation order
        keyframes = tuple(int(i) for i in np.searchsorted(frame_pts, np.asarray(sorted(set(key_pts)),
                                                                              dtype=np.int64)))
        frame_count = int(frame_pts.size)

        fps = None
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if rate:
            fps = float(rate)
        # Timestamps give the exact span; headers of mpg and ts only estimate it from the bit rate.
        duration_s = declared_duration_s
        if time_base and frame_count > 1 and fps:
            duration_s = float((int(frame_pts[-1]) - int(frame_pts[0])) * time_base) + 1.0 / fps
        elif duration_s is None and fps:
            duration_s = frame_count / fps
        if duration_s is not None and duration_s > limits.max_duration_s:
            raise VideoError(ErrorClass.LIMIT_EXCEEDED,
                             f"duration {duration_s:.0f} s exceeds the limit of {limits.max_duration_s:.0f} s")

        profile = ctx.profile if isinstance(ctx.profile, str) else None
        return Probe(
            path=str(path), size_bytes=size_bytes,
            container=container_name, codec=codec, profile=profile,
            width=width, height=height, pix_fmt=pix_fmt, bit_depth=_bit_depth_of(pix_fmt),
            chroma=_chroma_of(pix_fmt), frame_count=frame_count, frame_count_source="packets",
            fps=fps, duration_s=duration_s, has_audio=bool(container.streams.audio),
            keyframes=keyframes or (0,), frame_pts=frame_pts, time_base=time_base,
            rotation=_rotation(path, container_name, limits.timeout_s),
            packets=index.build(path, ctx.extradata) if index is not None and len(index.rows or ()) == order else None,
        )
    finally:
        container.close()


def probe(path: str | os.PathLike, limits: ProbeLimits = ProbeLimits()) -> Probe:
    """Probe one file or raise :class:`VideoError`. Never blocks longer than ``limits.timeout_s``."""
    path = os.fspath(path)
    deadline = time.monotonic() + limits.timeout_s
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["probe"] = _probe_now(path, limits, deadline)
        except VideoError as exc:
            outcome["error"] = exc
        except Exception as exc:  # noqa: BLE001 - any library failure is a refusal, never a crash
            outcome["error"] = VideoError(ErrorClass.CONTAINER_INVALID, f"{type(exc).__name__}: {exc}")

    # A daemon thread, so a read stuck inside FFmpeg cannot stop the caller from moving on.
    thread = threading.Thread(target=work, name="dfscan-probe", daemon=True)
    thread.start()
    thread.join(limits.timeout_s)
    if thread.is_alive():
        raise VideoError(ErrorClass.TIMEOUT, f"probe took longer than {limits.timeout_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["probe"]  # type: ignore[return-value]
