"""The device check script runs end to end on a CPU with DALI's CPU decoder and VP9 videos, and it
can fail: a decoder that is not there, or a check that does not hold, is a failure in the report."""

import json

import pytest

from benchmarks.gpu_check import main
from kernels.decode.nvdec import nvdec_available

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
