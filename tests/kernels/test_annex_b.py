"""The elementary stream the ``nvdec`` backend feeds NVDEC, decoded here by FFmpeg's own H.264 and
HEVC decoders (PyAV codec contexts, no container): the frames at the cut's indices are exactly the
file's frames at the plan's indices, for B-frames, open GOPs, far-apart HEVC CRA runs and the
containers archives hold."""

import av
import numpy as np
import pytest

from dfscan.kernels.decode.gops import CutUnsupported, cut_to_annex_b
from dfscan.kernels.encode import CODECS, Codec
from dfscan.kernels.probe import probe
from dfscan.kernels.records import nal_unit_types
from dfscan.kernels.sampling import keyframe_plan, uniform_plan
from tests.kernels.annex_b_reference import decode_stream
from tests.kernels.encodings import OPEN_GOP_ENCODINGS
from tests.media import read_index, write_index_video


def file_frames(path: str) -> list[np.ndarray]:
    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def assert_cut_gives_the_files_frames(path: str, plans: list[np.ndarray]) -> None:
    facts = probe(path)
    reference = file_frames(path)
    for wanted in plans:
        cut = cut_to_annex_b(facts, wanted)
        decoded = decode_stream(facts.codec, cut.access_units)
        assert [read_index(decoded[i]) for i in cut.frames] == wanted.tolist(), (path, wanted)
        for index, frame in zip(wanted.tolist(), cut.frames.tolist()):
            np.testing.assert_array_equal(decoded[frame], reference[index])


def plans_for(path: str) -> list[np.ndarray]:
    facts = probe(path)
    last = facts.frame_count - 1
    return [np.unique(uniform_plan(facts.frame_count, 8)), np.unique(keyframe_plan(facts.frame_count, facts.keyframes, 8)),
            np.array([1, 5, 32, 51]), np.array([0, 31]), np.array([45]), np.array([3, last // 3, last - 2]),
            np.array([last])]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
@pytest.mark.parametrize("container", ["mp4", "mkv", "mov"])
def test_annex_b_stream_decodes_to_the_files_frames(tmp_path, codec, container):
    spec = CODECS[codec]
    path = str(write_index_video(tmp_path / f"v.{container}", 60, Codec(spec.encoder, container, spec.pix_fmt,
                                                                        spec.options)))
    assert_cut_gives_the_files_frames(path, plans_for(path))


@pytest.mark.parametrize("name", ["x264-open-gop", "x265-cra-long", "x264-pyramid-mkv"])
def test_annex_b_stream_is_exact_with_open_gops(tmp_path, name):
    codec, frames = OPEN_GOP_ENCODINGS[name]
    path = str(write_index_video(tmp_path / name, frames, codec))
    assert_cut_gives_the_files_frames(path, plans_for(path))


def test_each_run_starts_with_parameter_sets_and_far_hevc_runs_jump(tmp_path):
    """x265 CRA keyframes far apart: three runs, each opening with VPS/SPS/PPS, the later two at a
    CRA written as BLA, and only about a GOP decoded per run."""
    codec, frames = OPEN_GOP_ENCODINGS["x265-cra-long"]
    facts = probe(write_index_video(tmp_path / "cra", frames, codec))
    cut = cut_to_annex_b(facts, np.array([3, 139, 417]))
    assert len(cut.run_starts) == 3 and len(cut.access_units) <= 3 * 12
    firsts = [set(nal_unit_types("hevc", cut.access_units[i], None)) for i in cut.run_starts.tolist()]
    assert all({32, 33, 34} <= types for types in firsts)  # VPS, SPS, PPS
    assert 20 in firsts[0]  # the file's own IDR opens the first run
    assert [16 in t and 21 not in t for t in firsts[1:]] == [True, True]
    assert cut.data.startswith(b"\x00\x00\x00\x01")


def test_h264_runs_carry_sps_and_pps(tmp_path):
    facts = probe(write_index_video(tmp_path / "h", 60, "h264"))
    cut = cut_to_annex_b(facts, np.array([2, 40]))
    first_units = [nal_unit_types("h264", cut.access_units[i], None) for i in cut.run_starts.tolist()]
    assert all(types[:2] == [7, 8] and 5 in types for types in first_units)  # SPS, PPS, then the IDR


def test_annex_b_refuses_other_codecs(tmp_path):
    facts = probe(write_index_video(tmp_path / "v", 20, "vp9"))
    with pytest.raises(CutUnsupported, match="no Annex B"):
        cut_to_annex_b(facts, np.array([0]))


@pytest.mark.parametrize("codec", ["h264", "hevc"])
@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_the_probes_packet_index_gives_the_cut_a_second_demux_gives(tmp_path, monkeypatch, codec, container):
    """MP4/MOV: the cut reads its packets where the probe saw them, opening no container, and writes
    exactly the stream that demuxing the file again writes (B-frames, HEVC CRA runs)."""
    import dataclasses

    from dfscan.kernels.decode import gops
    spec = CODECS[codec]
    path = str(write_index_video(tmp_path / f"v.{container}", 60, Codec(spec.encoder, container, spec.pix_fmt,
                                                                        spec.options)))
    facts = probe(path)
    assert facts.packets is not None and facts.packets.size.sum() <= facts.size_bytes
    plans = plans_for(path)
    demuxed = [cut_to_annex_b(dataclasses.replace(facts, packets=None), wanted) for wanted in plans]

    def no_open(*args, **kwargs):
        raise AssertionError("the cut opened the container again")

    monkeypatch.setattr(gops.av, "open", no_open)
    for wanted, again in zip(plans, demuxed):
        cut = cut_to_annex_b(facts, wanted)
        assert cut.access_units == again.access_units
        assert cut.frames.tolist() == again.frames.tolist()
        assert cut.run_starts.tolist() == again.run_starts.tolist()


def test_a_file_changed_since_its_probe_is_not_read_by_its_index(tmp_path):
    """Rewritten in place (same size, another time): the index would point into other bytes."""
    import os

    path = str(write_index_video(tmp_path / "v", 30, "h264"))
    facts = probe(path)
    data = bytearray(open(path, "rb").read())
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, facts.packets.mtime_ns + 1_000_000_000))
    with pytest.raises(CutUnsupported, match="changed since it was probed"):
        cut_to_annex_b(facts, np.array([0, 29]))
