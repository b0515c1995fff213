"""The host-path benchmark (benchmarks/host_path.py): its free stand-in decoder returns as many
frames as FFmpeg decodes from the same Annex B stream, and a measurement reads every file through
the decoder asked for, with the CPU time counted."""

import numpy as np
import pytest

from dfscan.benchmarks import host_path, nvdec_stand_in
from dfscan.kernels.decode.gops import cut_to_annex_b
from dfscan.kernels.probe import probe
from dfscan.kernels.sampling import keyframe_plan
from tests.kernels.annex_b_reference import decode_stream
from tests.kernels.encodings import OPEN_GOP_ENCODINGS
from tests.kernels.nvdec_fake import fake_nvc  # noqa: F401 - the fixture
from tests.media import write_index_video


@pytest.mark.parametrize("encoding", ["h264", "hevc", "x264-pyramid-mkv", "x265-cra-long"])
def test_the_stand_in_counts_the_pictures_ffmpeg_decodes(tmp_path, encoding):
    codec, count = OPEN_GOP_ENCODINGS.get(encoding, (encoding, 40))
    facts = probe(write_index_video(tmp_path / "v", min(count, 60), codec, width=160, height=160))
    for wanted in (np.arange(facts.frame_count), np.array([2, 14, 15, 33])):
        cut = cut_to_annex_b(facts, wanted)
        for start, end in zip(cut.run_starts.tolist(), [*cut.run_starts.tolist()[1:], len(cut.access_units)]):
            run = cut.access_units[start:end]
            assert nvdec_stand_in.pictures_in(facts.codec, b"".join(run)) == len(run)
        assert nvdec_stand_in.pictures_in(facts.codec, cut.data) == len(decode_stream(facts.codec, cut.access_units))


@pytest.mark.parametrize("decoder", host_path.HOST_DECODERS)
def test_a_measurement_reads_every_file_through_its_decoder(tmp_path, decoder):
    from dfscan.kernels.decode import nvdec

    loader = nvdec.load_pynvvideocodec
    paths = [str(write_index_video(tmp_path / f"v{i}", 30, "h264", width=160, height=96)) for i in range(3)]
    row = host_path.measure(paths, decoder, threads=2, rounds=2)
    assert row["decoder"] == decoder and row["videos"] == 6 and row["threads"] == 2
    assert row["cpu_ms_per_video"] > 0 and row["videos_per_s"] > 0
    assert (row["stand_in_cpu_ms_per_video"] > 0) == (decoder == "nvdec")
    assert nvdec.load_pynvvideocodec is loader  # the stand-in is gone again


def test_the_free_decoder_gives_frames_of_the_streams_shape(tmp_path):
    decoder = nvdec_stand_in.FreePyNvVideoCodec().CreateDecoder(0, "h264", 0, 0, True, 1920, 1920, 0)
    decoder.setReconfigParams(160, 96)
    facts = probe(write_index_video(tmp_path / "v", 30, "h264", width=160, height=96))
    cut = cut_to_annex_b(facts, np.unique(keyframe_plan(facts.frame_count, facts.keyframes, 8)))
    packet = nvdec_stand_in.FreePyNvVideoCodec.PacketData()
    payload = np.frombuffer(cut.data, dtype=np.uint8)
    packet.bsl_data, packet.bsl = payload.ctypes.data, payload.size
    frames = decoder.Decode(packet)
    assert len(frames) == len(cut.access_units) and frames[0].buffer.shape == (144, 160)
    assert decoder.Decode(nvdec_stand_in.FreePyNvVideoCodec.PacketData()) == []  # the flush


def test_the_real_mode_times_the_decoders_calls_and_the_spinner_runs_beside(tmp_path, fake_nvc):
    """--real on the CPU: the tests' FFmpeg stand-in plays PyNvVideoCodec, the GPU part runs on the CPU
    backend; the row says how long the Decode calls took and how free Python's lock was."""
    paths = [str(write_index_video(tmp_path / f"v{i}", 30, "h264", width=160, height=96)) for i in range(2)]
    row = host_path.measure(paths, "nvdec", threads=1, rounds=1, real=True, spin=True)
    assert row["real"] and row["videos"] == 2
    assert row["decode_wall_ms_per_video"] >= row["stand_in_cpu_ms_per_video"] * 0.5 > 0
    assert 0 < row["spinner_share"]
    assert len(fake_nvc.decoders) == 1  # the fake itself, wrapped and timed


def test_real_mode_without_pynvvideocodec_is_one_line_and_exit_1(tmp_path, capsys):
    from dfscan.kernels.decode import nvdec

    if nvdec.nvdec_available():
        pytest.skip("PyNvVideoCodec loads here")
    write_index_video(tmp_path / "v0", 10, "h264")
    with pytest.raises(SystemExit) as stopped:
        host_path.main(["--archive", str(tmp_path), "--real", "--decoders", "nvdec", "--threads", "1",
                        "--processes", "0"])
    assert stopped.value.code == 1
    assert capsys.readouterr().err.startswith("host_path: PyNvVideoCodec cannot be loaded")
