"""The device check script runs end to end on a CPU with DALI's CPU decoder and VP9 videos."""

import json

from benchmarks.gpu_check import main


def test_gpu_check_on_cpu_writes_a_report(tmp_path):
    out = tmp_path / "report"
    report = main(["--out", str(out), "--videos", "3", "--seconds", "1", "--resolutions", "160x120",
                   "--codec", "vp9", "--decoder", "dali-cpu", "--pipelines", "1,2", "--batch", "2",
                   "--size", "32", "--frames", "6", "--models", "cnn-lstm", "--model-batch", "2",
                   "--model-repeats", "1"])
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "throughput.png"]
    saved = json.loads((out / "report.json").read_text())
    decode_modes = [name for name in saved["modes"] if name.startswith("dali-cpu")]
    assert decode_modes == [f"dali-cpu {sampling} 160x120 x{pipelines} feed={feed}"
                            for sampling in ("uniform", "keyframe") for feed in ("gops", "file")
                            for pipelines in (1, 2)] + ["dali-cpu overhead 160x120 x2"]
    for name in decode_modes:
        assert saved["modes"][name]["n_failures"] == 0
        assert saved["modes"][name]["videos_per_s"]["median"] > 0
    assert saved["modes"]["model cnn-lstm S=64 B=2"]["videos_per_s"]["median"] > 0
    markdown = (out / "report.md").read_text()
    assert "| dali-cpu keyframe 160x120 x2 feed=gops |" in markdown
    # 1-second VP9 videos hold one keyframe, so both feeds decode frames 0..last wanted.
    for sampling in ("uniform", "keyframe"):
        for pipelines in (1, 2):
            gops = saved["modes"][f"dali-cpu {sampling} 160x120 x{pipelines} feed=gops"]
            whole = saved["modes"][f"dali-cpu {sampling} 160x120 x{pipelines} feed=file"]
            assert (gops["files_whole"], whole["files_cut"]) == (0, 0)
            assert gops["files_cut"] == whole["files_whole"] == 3 + pipelines  # with each reader's warm-up
    keyframe = saved["modes"]["dali-cpu keyframe 160x120 x1 feed=gops"]
    assert keyframe["frames_decoded_per_s"]["median"] > 0
    for sampling in ("uniform", "keyframe"):
        check = saved["agreement"][f"160x120 {sampling}"]
        assert check["videos"] == check["files_cut"] == 2  # not a whole file compared with itself
        assert check["max_abs_diff_same_indices"] == 0
        assert check["mean_abs_diff_one_frame_later"] > 1.0
        assert f"| 160x120 {sampling} |" in markdown
    assert report["modes"].keys() == saved["modes"].keys()
