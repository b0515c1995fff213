"""Pixel formats read from configuration records agree with what FFmpeg learns by decoding a frame."""

import av
import pytest

from dfscan.kernels.encode import Codec
from dfscan.kernels.probe import _bit_depth_of, _chroma_of, probe
from dfscan.kernels.records import _rbsp, h264_format, hevc_format, pix_fmt_name, stream_format
from tests.media import write_index_video


def decoded_facts(path: str) -> tuple[str, str | None, int | None, bytes]:
    """Codec, chroma and bit depth the usual way (FFmpeg decodes a frame to find them), and extradata."""
    with av.open(path) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.codec.canonical_name, _chroma_of(ctx.pix_fmt), _bit_depth_of(ctx.pix_fmt), bytes(ctx.extradata or b"")


@pytest.mark.parametrize("encoder, pix_fmt, extension", [
    ("libx264", "yuv420p", "mp4"), ("libx264", "yuv422p", "mp4"), ("libx264", "yuv444p", "mp4"),
    ("libx264", "yuv420p10le", "mp4"), ("libx264", "yuv444p10le", "mov"), ("libx264", "yuv420p", "mkv"),
    ("libx264", "yuv444p", "ts"), ("libx265", "yuv420p", "mp4"), ("libx265", "yuv420p10le", "mp4"),
    ("libx265", "yuv444p", "mkv"),
])
def test_record_matches_decoded_format(tmp_path, encoder, pix_fmt, extension):
    options = {"x265-params": "log-level=none"} if encoder == "libx265" else {}
    # MPEG-TS needs a second of packets before FFmpeg will open it: 25 frames at 25 fps.
    path = str(write_index_video(tmp_path / "clip", 25, Codec(encoder, extension, pix_fmt, options), 64, 64))
    codec, chroma, depth, extradata = decoded_facts(path)
    expected = (chroma, depth)
    from_record = stream_format(codec, extradata)
    if extension == "ts" and encoder == "libx265":
        assert from_record is None
    else:
        assert from_record == expected, (pix_fmt, extension)
    facts = probe(path)  # whichever way the probe took, it reports what decoding reports
    assert (facts.chroma, facts.bit_depth) == expected


def test_emulation_prevention_bytes_are_removed():
    assert _rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x00"
    assert _rbsp(b"\x12\x00\x03") == b"\x12\x00\x03"  # one zero is no emulation prevention


def test_damaged_or_foreign_records_are_not_trusted():
    assert h264_format(b"") is None
    assert h264_format(b"\x01\x64\x00\x1f\xff\xe1\x00\x20\x67") is None  # SPS cut short
    assert h264_format(b"\x00\x00\x00\x01\x68\xee") is None  # Annex B without an SPS
    assert hevc_format(b"\x01" + b"\x00" * 22) is None  # reserved bits zero: fields not trusted
    main_but_444 = bytearray(b"\x01\x01" + b"\x00" * 21)
    main_but_444[16], main_but_444[17] = 0xFC | 3, 0xF8
    assert hevc_format(bytes(main_but_444)) is None  # Main profile cannot be 4:4:4
    main_10 = bytearray(main_but_444)
    main_10[1], main_10[16], main_10[17] = 2, 0xFC | 1, 0xF8 | 2
    assert hevc_format(bytes(main_10)) == ("420", 10)
    assert stream_format("vp9", b"\x01\x02") is None


def test_pix_fmt_names_follow_ffmpeg():
    assert [pix_fmt_name(*f) for f in (("420", 8), ("444", 10), ("400", 8), ("422", 12))] == \
        ["yuv420p", "yuv444p10le", "gray", "yuv422p12le"]
    for name in ("yuv420p", "yuv444p10le", "gray", "yuv422p12le"):
        av.VideoFormat(name)  # every name is one FFmpeg knows
