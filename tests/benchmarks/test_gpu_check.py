"""The device check script runs end to end on a CPU with DALI's CPU decoder and VP9 videos, and it
can fail: a decoder that is not there, or a check that does not hold, is a failure in the report."""

import importlib.util
import json

import pytest

from dfscan.benchmarks import gpu_faces
from dfscan.benchmarks.gpu_check import main
from dfscan.kernels.decode.nvdec import nvdec_available

SMALL = ["--videos", "3", "--seconds", "1", "--resolutions", "160x120", "--codec", "vp9", "--batch", "2",
         "--size", "32", "--frames", "6", "--model-batch", "2", "--model-repeats", "1"]


def test_gpu_check_on_cpu_writes_a_report(tmp_path):
    out = tmp_path / "report"
    report = main(["--out", str(out), *SMALL, "--decoders", "dali-cpu", "--pipelines", "1,2",
                   "--extra", "120x160:vp9", "--models", "cnn-lstm", "--e2e-arch", "cnn-lstm"])
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "throughput.png"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["failures"] == [] and saved["skipped"] == []
    decode_modes = [name for name in saved["modes"] if name.startswith("dali-cpu")]
    assert decode_modes == [f"dali-cpu {sampling} 160x120 x{pipelines} feed={feed}"
                            for sampling in ("keyframe", "uniform") for feed in ("gops", "file")
                            for pipelines in (1, 2)] + ["dali-cpu overhead 160x120 x2"]
    for name in decode_modes:
        mode = saved["modes"][name]
        assert mode["decoders_used"] == {"dali-cpu": 3}, name  # rated clips: decoded, by the decoder asked for
        assert mode["videos_per_s"]["median"] > 0 and mode["videos_per_s"]["n"] == 1
    for sampling in ("uniform", "keyframe"):
        for pipelines in (1, 2):
            gops = saved["modes"][f"dali-cpu {sampling} 160x120 x{pipelines} feed=gops"]
            whole = saved["modes"][f"dali-cpu {sampling} 160x120 x{pipelines} feed=file"]
            assert (gops["files_cut"], gops["files_whole"]) == (3, 0)  # warm-up reads are not counted
            assert (whole["files_cut"], whole["files_whole"]) == (0, 3)
    assert saved["modes"]["model cnn-lstm S=64 B=2"]["videos_per_s"]["median"] > 0
    assert saved["modes"]["end to end dali-cpu keyframe 160x120 cnn-lstm x2"]["decoders_used"] == {"dali-cpu": 6}
    for name in ("agree 160x120", "agree odd"):
        for sampling in ("uniform", "keyframe"):
            cut = saved["agreement"][f"dali-cpu {name} {sampling} feed=gops"]
            assert cut["files_cut"] == cut["videos"] == (2 if name == "agree 160x120" else 1)
            assert cut["max_abs_diff_same_indices"] == 0 and cut["mean_abs_diff_one_frame_later"] > 0.25
            assert cut["mean_abs_diff_vs_pyav"] < 3.0
            assert saved["agreement"][f"dali-cpu {name} {sampling} feed=file"]["mean_abs_diff_vs_pyav"] < 3.0
    markdown = (out / "report.md").read_text()
    assert "| dali-cpu keyframe 160x120 x2 feed=gops |" in markdown and "| one run |" in markdown
    assert "| dali-cpu agree odd keyframe feed=gops |" in markdown
    assert report["modes"].keys() == saved["modes"].keys()


@pytest.mark.skipif(nvdec_available(), reason="PyNvVideoCodec loads here: nvdec is not missing")
def test_gpu_check_reports_a_missing_decoder_as_a_failure(tmp_path):
    out = tmp_path / "report"
    report = main(["--out", str(out), *SMALL, "--decoders", "nvdec", "--pipelines", "1", "--extra", "",
                   "--models", "", "--e2e-arch", ""])
    saved = json.loads((out / "report.json").read_text())
    assert saved["failures"] == report["failures"]
    assert len(saved["failures"]) == 1 and saved["failures"][0].startswith("nvdec: PyNvVideoCodec cannot be loaded")
    assert [name for name in saved["modes"] if "nvdec" in name] == []  # no fallback measured as nvdec
    assert "Failed checks:" in (out / "report.md").read_text()


def test_end_to_end_in_several_processes(tmp_path):
    """--e2e-processes: the end-to-end stage in 1 then 2 processes at once, a row for their summed rate
    and one per process, every rated clip decoded by the decoder asked for."""
    out = tmp_path / "report"
    main(["--out", str(out), *SMALL, "--decoders", "dali-cpu", "--pipelines", "1", "--feeds", "gops", "--extra", "",
          "--models", "", "--e2e-arch", "cnn-lstm", "--e2e-processes", "1,2", "--e2e-threads", "1",
          "--e2e-videos", "5"])
    saved = json.loads((out / "report.json").read_text())
    assert saved["failures"] == [] and saved["skipped"] == []
    name = "end to end dali-cpu keyframe 160x120 cnn-lstm"
    assert [m for m in saved["modes"] if m.startswith("end to end")] == [
        f"{name} P1 x1", f"{name} P1 x1 process 0", f"{name} P2 x1", f"{name} P2 x1 process 0",
        f"{name} P2 x1 process 1"]
    both = saved["modes"][f"{name} P2 x1"]
    assert (both["processes"], both["threads_per_process"], both["videos"]) == (2, 1, 5)
    assert both["decoders_used"] == {"dali-cpu": 5} and both["videos_per_s"]["median"] > 0
    shares = [saved["modes"][f"{name} P2 x1 process {i}"] for i in (0, 1)]
    assert [(s["videos"], s["decoders_used"]) for s in shares] == [(3, {"dali-cpu": 3}), (2, {"dali-cpu": 2})]
    assert both["sum_of_process_rates"] == pytest.approx(sum(s["videos_per_s"]["median"] for s in shares))
    assert saved["modes"][f"{name} P1 x1"]["decoders_used"] == {"dali-cpu": 5}
    assert f"| {name} P2 x1 process 1 |" in (out / "report.md").read_text()


def test_a_silent_fallback_to_pyav_fails_the_check_and_says_why(tmp_path, monkeypatch):
    """A file the decoder under test failed and PyAV then read is no error of the scan, but it is a
    failure of the check: the report names the file and the decoder's own error."""
    from dfscan.kernels.decode.dali import DaliDecoder
    from dfscan.kernels.errors import ErrorClass, VideoError

    real = DaliDecoder.decode_batch

    def failing_the_first(self, probes, plans):
        frames, errors = real(self, probes, plans)
        return [None, *frames[1:]], [VideoError(ErrorClass.DECODE_ERROR, "DALI: stand-in"), *errors[1:]]

    monkeypatch.setattr(DaliDecoder, "decode_batch", failing_the_first)
    report = main(["--out", str(tmp_path / "report"), *SMALL, "--decoders", "dali-cpu", "--pipelines", "1",
                   "--feeds", "gops", "--extra", "", "--models", "", "--e2e-arch", "cnn-lstm"])
    (end_to_end,) = [f for f in report["failures"] if f.startswith("end to end")]
    assert "'pyav'" in end_to_end and "dali-cpu failed it: DECODE_ERROR: DALI: stand-in" in end_to_end
    decode_stages = [f for f in report["failures"] if f.startswith(("dali-cpu keyframe", "dali-cpu uniform"))]
    assert decode_stages and all("fell back from dali-cpu: DECODE_ERROR: DALI: stand-in" in f for f in decode_stages)


def test_end_to_end_processes_that_cannot_start_fail_every_stage(tmp_path):
    out = tmp_path / "report"
    report = main(["--out", str(out), *SMALL, "--decoders", "dali-cpu", "--pipelines", "1", "--feeds", "gops",
                   "--extra", "", "--models", "", "--e2e-arch", "no-such-arch", "--e2e-processes", "1,2",
                   "--e2e-threads", "1", "--e2e-videos", "2"])
    failures = [f for f in report["failures"] if f.startswith("end to end")]
    assert len(failures) == 2 and report["failures"] == failures
    for processes, failure in zip((1, 2), failures):
        assert failure.startswith(f"end to end dali-cpu keyframe 160x120 no-such-arch P{processes} x1: "
                                  "the end-to-end processes did not start: process ")
    assert "no-such-arch" in failures[0].split("did not start", 1)[1]  # the child's own error, passed on
    assert [m for m in report["modes"] if m.startswith("end to end")] == []


FACE_STAGE = ["--decoders", "", "--extra", "", "--models", "", "--e2e-arch", "", "--face-videos", "2",
              "--face-frames", "2", "--face-batch", "2"]
FACE_MODE = "faces mtcnn 1080p K=2 at 480 B=2"


needs_mtcnn_weights = pytest.mark.skipif(importlib.util.find_spec("mtcnn") is None,  # found, not imported (TF)
                                         reason="MTCNN's weights come from the mtcnn package")


@needs_mtcnn_weights
def test_the_face_stage_reports_detected_frames_per_second(tmp_path):
    report = main(["--out", str(tmp_path / "report"), *SMALL, *FACE_STAGE])
    assert report["failures"] == [] and list(report["modes"]) == [FACE_MODE]
    faces = report["modes"][FACE_MODE]
    assert (faces["videos"], faces["frames_per_video"], faces["detect_size"], faces["videos_per_call"]) == (
        2, 2, [270, 480], 2)
    assert faces["frames_detected_per_s"] > 0 and faces["ms_per_video"] > 0
    assert faces["detector"] == "mtcnn 1.0.0"
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["modes"][FACE_MODE]["frames_detected_per_s"] == faces["frames_detected_per_s"]


@needs_mtcnn_weights
def test_a_face_found_elsewhere_fails_the_face_stage(tmp_path, monkeypatch):
    """The stage checks where the faces are, so a detector answering nonsense cannot pass as a rate."""
    pasted = gpu_faces.face_frames

    def moved(*args):
        images, boxes = pasted(*args)
        return images, [box + [40, 0, 0, 0] for box in boxes]

    monkeypatch.setattr(gpu_faces, "face_frames", moved)
    report = main(["--out", str(tmp_path / "report"), *SMALL, *FACE_STAGE])
    assert len(report["failures"]) == 1 and report["modes"] == {}
    assert report["failures"][0].startswith(f"{FACE_MODE}: the face stage missed 4 of 4 faces: frame 0: ")


def test_the_nvdec_engine_and_feed_stages_are_in_the_report(tmp_path, monkeypatch):
    """Wired into gpu_check (--nvdec-engine), against the CPU stand-in for PyNvVideoCodec."""
    from dfscan.kernels.decode import nvdec
    from dfscan.kernels.probe import probe
    from tests.kernels.nvdec_fake import FakePyNvVideoCodec

    fake = FakePyNvVideoCodec()
    monkeypatch.setattr(nvdec, "load_pynvvideocodec", lambda: fake)
    monkeypatch.setattr("dfscan.benchmarks.nvdec_engine.load_pynvvideocodec", lambda: fake)
    archive = tmp_path / "archive"
    small = [a if a != "vp9" else "h264" for a in SMALL]
    report = main(["--out", str(tmp_path / "report"), *small, "--decoders", "nvdec", "--pipelines", "1",
                   "--extra", "", "--models", "", "--e2e-arch", "", "--nvdec-engine", "--archive-dir", str(archive)])
    assert report["failures"] == []
    engine = report["modes"]["nvdec engine 160x120 x1 every frame, no resize"]
    files = sorted((archive / "160x120").glob("*.mp4"))
    assert len(files) == engine["videos"] == 3 and engine["frames"] == sum(probe(p).frame_count for p in files)
    feed = report["modes"]["nvdec keyframe 160x120 x1 decoder alone feed=run vs unit"]
    assert set(feed["by_feed"]) == {"run", "unit"} and feed["videos"] == 3
