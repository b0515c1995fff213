"""Encoder settings the GOP tests share: open-GOP H.264 and HEVC, and 10-bit HEVC."""

from __future__ import annotations

from dfscan.kernels.encode import Codec

OPEN_GOP_ENCODINGS = {  # name: (encoder configuration, frames)
    # x264 open GOPs: keyframes are recovery-point I-frames, not IDRs, and the decoder's picture
    # order carries across them.
    "x264-open-gop": (Codec("libx264", "mp4", "yuv420p",
                            {"g": "12", "bf": "3", "preset": "medium", "x264-params": "open-gop=1"}), 60),
    # x265's default CRA keyframes: picture order counts wrap when runs lie far apart.
    "x265-cra-long": (Codec("libx265", "mp4", "yuv420p",
                            {"x265-params": "keyint=12:log-level=none", "preset": "ultrafast"}), 420),
    # Matroska leaves the first dts unset under a B-pyramid.
    "x264-pyramid-mkv": (Codec("libx264", "mkv", "yuv420p", {"g": "12", "bf": "3", "preset": "medium"}), 60),
    # MPEG-2 GOPs are open by default; its B-frames are never references.
    "mpeg2-open": (Codec("mpeg2video", "mpg", "yuv420p", {"g": "12", "bf": "2", "qscale": "2"}), 60),
}


HEVC_10_BIT = Codec("libx265", "mp4", "yuv420p10le", {"x265-params": "keyint=12:log-level=none", "preset": "ultrafast"})
