import os
import time

import pytest

from dfscan.kernels.encode import CODECS
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import ProbeLimits, probe
from tests.media import write_corrupt_corpus, write_index_video


@pytest.mark.parametrize("codec, codec_name, container", [
    ("h264", "h264", "mp4"), ("hevc", "hevc", "mp4"), ("vp9", "vp9", "webm"), ("vp8", "vp8", "webm"),
    ("av1", "av1", "mkv"), ("mpeg4", "mpeg4", "avi"), ("mjpeg", "mjpeg", "avi"), ("prores", "prores", "mov"),
    ("mpeg2", "mpeg2video", "mpeg"),
])
def test_probe_reports_exact_facts(tmp_path, codec, codec_name, container):
    path = write_index_video(tmp_path / f"clip_{codec}", 37, codec, width=128, height=96, fps=25)
    result = probe(path)
    assert result.codec == codec_name
    assert result.container == container
    assert (result.width, result.height) == (128, 96)
    assert result.frame_count == 37
    assert result.keyframes[0] == 0
    assert result.fps == pytest.approx(25.0)
    assert result.duration_s == pytest.approx(37 / 25, abs=0.1)
    assert result.size_bytes == os.path.getsize(path)
    assert result.has_audio is False
    assert result.pix_fmt == CODECS[codec].pix_fmt


def test_probe_pixel_format_facts_route_decoders(tmp_path):
    prores = probe(write_index_video(tmp_path / "p", 3, "prores"))
    assert (prores.bit_depth, prores.chroma) == (10, "422")
    h264 = probe(write_index_video(tmp_path / "h", 3, "h264"))
    assert (h264.bit_depth, h264.chroma) == (8, "420")
    assert h264.profile in {"Constrained Baseline", "Baseline", "Main", "High"}


def test_keyframes_of_long_gop_video(tmp_path):
    result = probe(write_index_video(tmp_path / "gop", 40, "h264"))
    assert result.keyframes == (0, 12, 24, 36)


def test_header_with_zero_frames_is_counted_from_packets(tmp_path):
    import av

    path = write_index_video(tmp_path / "zero_header", 23, "vp9")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # the webm header does not say
    assert probe(path).frame_count == 23


def test_variable_frame_rate_counts_frames_not_duration(tmp_path):
    from fractions import Fraction

    pts = [0, 10, 20, 100, 110, 400, 410, 420, 900, 905]
    path = write_index_video(tmp_path / "vfr", len(pts), "h264", pts=pts, time_base=Fraction(1, 1000))
    result = probe(path)
    assert result.frame_count == 10
    seconds = [float(value * result.time_base) for value in result.frame_pts]
    assert seconds == pytest.approx([value / 1000 for value in pts])


def test_corrupt_corpus_gets_error_classes(tmp_path):
    expected = write_corrupt_corpus(tmp_path)
    for name, error_class in expected.items():
        with pytest.raises(VideoError) as caught:
            probe(tmp_path / name)
        assert caught.value.error_class is error_class, name
        assert "\n" not in caught.value.message


def test_huge_declared_frames_are_refused_before_allocating(tmp_path):
    expected = write_corrupt_corpus(tmp_path)
    path = tmp_path / "huge_declared.mov"
    assert expected["huge_declared.mov"] is ErrorClass.LIMIT_EXCEEDED
    assert path.stat().st_size < 16_000
    with pytest.raises(VideoError, match="12288x12288"):
        probe(path)


def test_limits_are_configurable(tmp_path):
    path = write_index_video(tmp_path / "small", 30, "h264", width=128, height=96)
    with pytest.raises(VideoError) as caught:
        probe(path, ProbeLimits(max_pixels=100 * 100))
    assert caught.value.error_class is ErrorClass.LIMIT_EXCEEDED
    with pytest.raises(VideoError) as caught:
        probe(path, ProbeLimits(max_duration_s=0.5))
    assert caught.value.error_class is ErrorClass.LIMIT_EXCEEDED


def test_missing_and_non_regular_files(tmp_path):
    with pytest.raises(VideoError) as caught:
        probe(tmp_path / "nope.mp4")
    assert caught.value.error_class is ErrorClass.NOT_FOUND
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(VideoError) as caught:
        probe(tmp_path / "dir.mp4")
    assert caught.value.error_class is ErrorClass.NOT_VIDEO
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(VideoError) as caught:
        probe(fifo)
    assert caught.value.error_class is ErrorClass.NOT_VIDEO
    assert time.monotonic() - started < 5  # never opened, so it cannot block


def test_probe_times_out_instead_of_hanging(tmp_path, monkeypatch):
    import dfscan.kernels.probe as probe_module
    def stuck(*args, **kwargs):
        time.sleep(3)

    monkeypatch.setattr(probe_module, "_probe_now", stuck)
    with pytest.raises(VideoError) as caught:
        probe(tmp_path / "any.mp4", ProbeLimits(timeout_s=0.3))
    assert caught.value.error_class is ErrorClass.TIMEOUT


def test_mp4_probes_keep_where_each_packet_lies_and_matroska_probes_do_not(tmp_path):
    """The index holds every packet in decode order, each at the bytes the demuxer gave; it stays
    out of the probe's JSON."""
    import os

    import av
    import numpy as np

    mp4 = probe(write_index_video(tmp_path / "a", 24, "h264"))
    mkv = probe(write_index_video(tmp_path / "b", 24, "vp9"))
    assert mkv.packets is None and "packets" not in mp4.as_dict()
    index = mp4.packets
    assert index.pts.size == mp4.frame_count == 24 and sorted(index.pts.tolist()) == mp4.frame_pts.tolist()
    assert np.flatnonzero(index.keyframe).tolist() == [0, 12]  # g=12, decode order
    with av.open(mp4.path) as container, open(mp4.path, "rb") as handle:
        packets = [p for p in container.demux(video=0) if p.size]
        assert [bytes(p) for p in packets] == [os.pread(handle.fileno(), int(size), int(offset))
                                               for offset, size in zip(index.offset, index.size)]
        assert index.dts.tolist() == [p.dts for p in packets]


def test_a_file_with_more_packets_than_the_index_keeps_has_none(tmp_path, monkeypatch):
    from dfscan.kernels import probe as probe_module

    path = write_index_video(tmp_path / "a", 24, "h264")
    monkeypatch.setattr(probe_module, "MAX_INDEXED_PACKETS", 23)
    assert probe(path).packets is None and probe(path).frame_count == 24
    monkeypatch.setattr(probe_module, "MAX_INDEXED_PACKETS", 24)
    assert probe(path).packets.pts.size == 24
