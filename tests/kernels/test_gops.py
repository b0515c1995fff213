"""Cutting a video to the GOPs a plan needs: the cut decodes to exactly the wanted frames, holds
only the runs they need, and DALI returns the same pixels from the cut as from the whole file."""

import dataclasses
import io
from fractions import Fraction

import av
import numpy as np
import pytest

from dfscan.kernels.decode.dali import DaliDecoder
from dfscan.kernels.decode.gops import CutUnsupported, cut_to_gops
from dfscan.kernels.probe import probe
from dfscan.kernels.sampling import keyframe_plan, uniform_plan
from tests.kernels.encodings import OPEN_GOP_ENCODINGS
from tests.media import read_index, write_index_video

# Every codec a decoder here meets whose packets the muxers take (AV1's are refused: see below).
CUT_CODECS = ["h264", "hevc", "vp9", "vp8", "mpeg4", "mjpeg", "prores", "mpeg2"]
SIZE = 32


def decoded_indices(cut) -> list[int]:
    """What each frame of the cut stream shows, in presentation order."""
    with av.open(io.BytesIO(cut.data.tobytes())) as container:
        return [read_index(frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gops")
    return {codec: str(write_index_video(directory / f"gop_{codec}", 60, codec)) for codec in CUT_CODECS + ["av1"]}


@pytest.mark.parametrize("codec", CUT_CODECS)
def test_cut_decodes_to_exactly_the_wanted_frames(videos, codec):
    facts = probe(videos[codec])
    # [0, 1, 12, 13, ...]: keyframe runs of two frames; x265 shows leading pictures before each CRA.
    plans = [np.unique(uniform_plan(facts.frame_count, 5)), np.unique(keyframe_plan(facts.frame_count, facts.keyframes, 5)),
             np.array([30, 31, 45]), np.array([59]), np.array([0]), np.array([0, 1, 12, 13, 24, 25, 36, 48])]
    for wanted in plans:
        cut = cut_to_gops(facts, wanted)
        shown = decoded_indices(cut)
        assert len(shown) == cut.frames_in_stream, (codec, wanted)
        assert [shown[i] for i in cut.frames] == wanted.tolist(), (codec, wanted)
        assert cut.frames.tolist() == sorted(cut.frames.tolist())


def test_cut_keeps_only_the_runs_from_keyframes(videos):
    """VP9 every 12 frames, no reordering: frames 30, 31 need 24..31, frame 45 needs 36..45."""
    cut = cut_to_gops(probe(videos["vp9"]), np.array([30, 31, 45]))
    assert cut.runs == 2
    assert cut.frames_in_stream == 8 + 10
    assert cut.frames.tolist() == [6, 7, 17]
    assert decoded_indices(cut) == list(range(24, 32)) + list(range(36, 46))


def test_cut_with_b_frames_adds_only_the_reference_frames(videos):
    """H.264 with B-frames: a run ends at the last packet shown at or before the wanted frame, so
    at most the forward references of its last B-frames ride along."""
    facts = probe(videos["h264"])
    cut = cut_to_gops(facts, np.array([30, 31, 45]))
    assert cut.runs == 2
    assert 18 <= cut.frames_in_stream <= 18 + 2
    shown = decoded_indices(cut)
    assert shown[:8] == list(range(24, 32)) and 45 in shown


def test_hevc_open_gop_leading_pictures_are_left_out(videos):
    """x265 closes no GOPs by default: its leading pictures reference the GOP before, and a run that
    starts at their keyframe drops them instead of starting one GOP earlier."""
    facts = probe(videos["hevc"])
    cut = cut_to_gops(facts, np.array([59]))
    shown = decoded_indices(cut)
    assert shown[-1] == 59 and cut.frames.tolist() == [len(shown) - 1]
    assert len(shown) < 24  # not decoded from frame 0


@pytest.mark.parametrize("container", ["mkv", "ts", "mov", "flv"])
def test_h264_cut_from_other_containers(videos, tmp_path, container):
    """Matroska gives no dts, MPEG-TS carries Annex B without extradata: the cut still decodes."""
    remuxed = tmp_path / f"remuxed.{container}"
    with av.open(videos["h264"]) as source, av.open(str(remuxed), mode="w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    cut = cut_to_gops(probe(remuxed), np.array([30, 31, 45]))
    shown = decoded_indices(cut)
    assert [shown[i] for i in cut.frames] == [30, 31, 45]
    assert cut.runs == 2


@pytest.mark.parametrize("name", list(OPEN_GOP_ENCODINGS))
def test_cut_is_exact_with_open_gops_and_far_apart_runs(tmp_path, name):
    codec, frames = OPEN_GOP_ENCODINGS[name]
    facts = probe(write_index_video(tmp_path / name, frames, codec))
    last = facts.frame_count - 1
    plans = [np.array([1, 5, 32, 51]), np.array([0, 31]), np.array([45]), np.array([3, last // 3, last - 2]),
             np.unique(keyframe_plan(facts.frame_count, facts.keyframes, 8))]
    for wanted in plans:
        cut = cut_to_gops(facts, wanted)
        shown = decoded_indices(cut)
        assert len(shown) == cut.frames_in_stream, (name, wanted)
        assert [shown[i] for i in cut.frames] == wanted.tolist(), (name, wanted)


def test_hevc_cra_runs_are_relabelled_bla_and_cut_short(tmp_path):
    """Far-apart runs of x265's CRA keyframes: each later run's CRA is written as BLA, so decoding
    jumps there instead of decoding on through the gap."""
    from dfscan.kernels.records import nal_length_size, nal_unit_types

    codec, frames = OPEN_GOP_ENCODINGS["x265-cra-long"]
    facts = probe(write_index_video(tmp_path / "cra", frames, codec))
    cut = cut_to_gops(facts, np.array([3, 139, 417]))
    assert cut.runs == 3 and cut.frames_in_stream <= 3 * 12
    with av.open(io.BytesIO(cut.data.tobytes())) as container:
        stream = container.streams.video[0]
        length_size = nal_length_size("hevc", bytes(stream.codec_context.extradata))
        key_types = [set(nal_unit_types("hevc", bytes(p), length_size))
                     for p in container.demux(stream) if p.size and p.is_keyframe]
    assert 16 not in key_types[0]  # the first run opens the stream: its keyframe stays as it was
    assert [16 in t and 21 not in t for t in key_types[1:]] == [True, True]


def test_cut_skips_what_it_can_with_open_gops(tmp_path):
    """Where no state crosses a keyframe (MPEG-2), the cut still skips whole GOPs; where picture
    order does (H.264 recovery points), runs start only at IDR frames."""
    codec, frames = OPEN_GOP_ENCODINGS["mpeg2-open"]
    facts = probe(write_index_video(tmp_path / "m", frames, codec))
    cut = cut_to_gops(facts, np.array([45]))
    assert cut.frames_in_stream <= 12


def test_variable_frame_rate_cut(tmp_path):
    pts = [0, 1, 2, 5, 6, 20, 21, 22, 40, 41, 42, 43, 60, 61, 62, 63, 64, 65, 66, 67]
    path = write_index_video(tmp_path / "vfr", len(pts), "vp9", pts=pts, time_base=Fraction(1, 50))
    facts = probe(path)
    cut = cut_to_gops(facts, np.array([3, 17]))
    shown = decoded_indices(cut)
    assert [shown[i] for i in cut.frames] == [3, 17]


def test_streams_that_cannot_be_cut_say_so(videos):
    facts = probe(videos["av1"])
    with pytest.raises(CutUnsupported):
        cut_to_gops(facts, np.array([0, 30]))  # the muxers refuse the template of PyAV's AV1 decoder
    with pytest.raises(CutUnsupported):
        cut_to_gops(dataclasses.replace(probe(videos["vp9"]), frame_pts=None), np.array([0]))


def test_dali_reads_the_same_pixels_from_the_cut_and_decodes_fewer_frames(videos):
    facts = probe(videos["vp9"])
    plans = [np.array([30, 31, 45, 45]), np.array([59, 59, 59, 59]), np.array([0, 15, 30, 45])]
    results = {}
    for feed in ("gops", "file"):
        decoder = DaliDecoder(size=SIZE, gpu=False, max_batch=4, feed=feed)
        frames, errors = decoder.decode_batch([facts] * 3, plans)
        assert errors == [None] * 3
        assert [[read_index(f) for f in clip] for clip in frames] == [p.tolist() for p in plans]
        results[feed] = (frames, decoder)
    for cut_frames, whole_frames in zip(results["gops"][0], results["file"][0]):
        np.testing.assert_array_equal(cut_frames, whole_frames)
    gops, whole = results["gops"][1], results["file"][1]
    assert (gops.files_cut, gops.files_whole) == (3, 0)
    assert (whole.files_cut, whole.files_whole) == (0, 3)
    # Whole files: DALI decodes 0..45, 0..59 and 0..45. Cut: 24..31 + 36..45, 48..59, and four runs
    # starting at keyframes 0, 12, 24, 36 (1 + 4 + 7 + 10 frames).
    assert whole.frames_decoded == 46 + 60 + 46
    assert gops.frames_decoded == 18 + 12 + 22


def test_dali_feeds_the_whole_file_when_the_cut_is_refused(videos):
    facts = dataclasses.replace(probe(videos["vp9"]), frame_pts=None)
    decoder = DaliDecoder(size=SIZE, gpu=False, max_batch=2)
    frames, errors = decoder.decode_batch([facts], [np.array([10, 20, 30, 40])])
    assert errors == [None]
    assert [read_index(f) for f in frames[0]] == [10, 20, 30, 40]
    assert (decoder.files_cut, decoder.files_whole, decoder.frames_decoded) == (0, 1, 41)


def test_unknown_feed_is_refused():
    with pytest.raises(ValueError, match="unknown DALI feed"):
        DaliDecoder(size=SIZE, gpu=False, feed="gop")
