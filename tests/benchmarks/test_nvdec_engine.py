"""The NVDEC engine and feed stages of gpu_check, against the CPU stand-in for PyNvVideoCodec."""

import pytest

from dfscan.benchmarks import nvdec_engine
from dfscan.kernels.decode import nvdec
from tests.kernels.nvdec_fake import FakePyNvVideoCodec
from tests.media import write_index_video


@pytest.fixture
def fake_nvc(monkeypatch):
    fake = FakePyNvVideoCodec()
    monkeypatch.setattr(nvdec, "load_pynvvideocodec", lambda: fake)
    monkeypatch.setattr(nvdec_engine, "load_pynvvideocodec", lambda: fake)
    return fake


def test_the_engine_stage_decodes_every_frame_of_every_file_through_one_decoder(tmp_path, fake_nvc, monkeypatch):
    monkeypatch.setattr(nvdec_engine, "CHUNK_BYTES", 1000)  # many pieces, cut mid-picture
    paths = [str(write_index_video(tmp_path / "a", 40, "h264", width=128, height=96)),
             str(write_index_video(tmp_path / "b", 30, "h264", width=96, height=128)),
             str(write_index_video(tmp_path / "c", 25, "hevc", width=160, height=160))]
    result = nvdec_engine.engine_rate(paths)
    assert result["frames"] == 95 and result["videos"] == 3
    assert len(fake_nvc.decoders) == 2  # one per codec, reconfigured per file
    assert sorted(d.videos_started for d in fake_nvc.decoders) == [1, 2]
    assert result["frames_decoded_per_s"] > 0


def test_the_engine_stage_fails_when_frames_are_missing(tmp_path, fake_nvc, monkeypatch):
    path = str(write_index_video(tmp_path / "a", 40, "h264"))
    real_create = fake_nvc.CreateDecoder

    def losing_decoder(*args, **kwargs):
        decoder = real_create(*args, **kwargs)
        decode = decoder.Decode
        decoder.Decode = lambda packet: decode(packet)[:-1] if not packet.bsl else decode(packet)
        return decoder

    monkeypatch.setattr(fake_nvc, "CreateDecoder", losing_decoder)
    with pytest.raises(nvdec_engine.EngineCheckFailed, match="NVDEC returned 39 frames where the files hold 40"):
        nvdec_engine.engine_rate([path])


def test_the_feed_stage_compares_one_packet_per_run_with_one_per_access_unit(tmp_path, fake_nvc):
    paths = [str(write_index_video(tmp_path / name, 60, "h264", width=128, height=96)) for name in "ab"]
    result = nvdec_engine.feed_rates(paths, frames=10, size=32)  # 5 keyframes: 5 runs of 2 frames or more
    run, unit = result["by_feed"]["run"], result["by_feed"]["unit"]
    assert result["videos"] == 2
    assert run["packets_per_video"] == 5 and unit["packets_per_video"] > 10


def test_the_feed_stage_fails_when_the_feeds_disagree(tmp_path, fake_nvc, monkeypatch):
    paths = [str(write_index_video(tmp_path / "a", 60, "h264", width=128, height=96))]
    real_packets = nvdec._packets
    monkeypatch.setattr(nvdec, "_packets", lambda cut, feed: real_packets(cut, feed)[:-1] if feed == "unit"
                        else real_packets(cut, feed))  # the unit feed loses the last access unit
    with pytest.raises(nvdec_engine.EngineCheckFailed):
        nvdec_engine.feed_rates(paths, frames=10, size=32)
