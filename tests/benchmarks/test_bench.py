"""`dfscan bench` on a tiny synthetic archive: three files with a face, consistent numbers, whole
frames and face crops side by side."""

import json

import pytest
from typer.testing import CliRunner

from dfscan.cli import app
from tests.face_media import skip_without_mtcnn_weights


STAGE_NAMES = {"probe", "decode", "faces", "inference", "write"}


@pytest.mark.usefixtures("ray_cluster")
def test_bench_writes_consistent_report(tmp_path):
    """Whole frames and face crops (the default) in both sampling modes: the archive's portrait is
    large enough at 256x144 (its face about 26 pixels high) for MTCNN to find in every frame."""
    skip_without_mtcnn_weights()
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "bench", "--synthetic", "3", "--resolution", "256x144", "--seconds", "1", "--codec", "h264",
        "--gpus", "0", "--workers", "1", "--sampling", "both", "--frames", "4", "--size", "32", "--width", "0.25",
        "--repeats", "2", "--batch-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "throughput.png"]
    report = json.loads((out / "report.json").read_text())
    modes = report["modes"]
    assert list(modes) == ["scanner uniform", "scanner uniform face", "scanner keyframe", "scanner keyframe face",
                           "baseline (seed loop)", "decode bound (PyAV, all frames)"]
    assert report["archive"]["files"] == 3
    for name, mode in modes.items():
        assert mode["rows"] == [3, 3], name  # every repeat saw every file
        assert mode["videos_per_s"]["n"] == 2
        assert mode["videos_per_s"]["min"] <= mode["videos_per_s"]["median"] <= mode["videos_per_s"]["max"]
    assert modes["baseline (seed loop)"]["speedup_vs_baseline"] == 1.0
    assert modes["decode bound (PyAV, all frames)"]["fraction_of_decode_bound"] == 1.0
    # What each mode decodes per video is fixed by its plan, not by the machine's speed: the bound and
    # the seed loop decode all 30 frames, uniform sampling of 4 frames spread over 30 needs all of
    # them, keyframe sampling (one keyframe at 0) exactly the first 4.
    per_video = {name: mode["frames_decoded_per_s"]["median"] / mode["videos_per_s"]["median"]
                 for name, mode in modes.items()}
    assert per_video["decode bound (PyAV, all frames)"] == pytest.approx(30, rel=0.02)
    assert per_video["scanner keyframe"] == pytest.approx(4, rel=0.02)
    assert per_video["scanner keyframe"] < per_video["scanner uniform"] == pytest.approx(30, rel=0.02)
    assert per_video["scanner keyframe face"] == pytest.approx(4, rel=0.02)  # faces decode what frames do
    assert per_video["scanner uniform face"] == pytest.approx(30, rel=0.02)
    for sampling in ("uniform", "keyframe"):
        frame, face = modes[f"scanner {sampling}"], modes[f"scanner {sampling} face"]
        for mode in (frame, face):
            assert set(mode["stage_seconds"]) == STAGE_NAMES
            assert mode["bottleneck"] in STAGE_NAMES
        # The face stage is timed in face mode only; every video got face crops, each face found in all
        # 4 frames detected on (F=4, so 4 detected on).
        assert (frame["crop"], face["crop"]) == ("frame", "face")
        assert frame["stage_seconds"]["faces"] == 0 and frame["face_ms_per_video"] == 0
        assert face["stage_seconds"]["faces"] > 0
        assert face["face_ms_per_video"] == pytest.approx(1000 * face["stage_seconds"]["faces"] / 3)
        assert frame["faces"] == {"crops": {"frame": 3}, "videos_with_face": 0, "face_frames": []}
        assert face["faces"] == {"crops": {"face": 3}, "videos_with_face": 3, "face_frames": [4, 4, 4]}
        assert face["speedup_vs_baseline"] == pytest.approx(
            face["videos_per_s"]["median"] / modes["baseline (seed loop)"]["videos_per_s"]["median"])
    assert report["config"]["crops"] == ["frame", "face"]
    assert report["peak_rss_mb"] > 0
    markdown = (out / "report.md").read_text()
    assert "| scanner keyframe |" in markdown and "| baseline (seed loop) |" in markdown
    assert "| scanner keyframe face | face |" in markdown and "| 3 of 3 | 4.0 |" in markdown


def test_bench_bad_arguments_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--sampling", "sometimes", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown sampling" in result.stderr
    for crops in ("head", "face,face", ","):
        result = CliRunner().invoke(app, ["bench", "--crop", crops, "--out", str(tmp_path)])
        assert result.exit_code == 2, crops
        assert "dfscan: error: crops must be some of frame, face, each once" in result.stderr, crops
    result = CliRunner().invoke(app, ["bench", "--archive", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert result.exit_code == 2


@pytest.mark.usefixtures("ray_cluster")
def test_bench_measures_decoders_side_by_side(tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "bench", "--synthetic", "2", "--resolution", "96x64", "--seconds", "1", "--codec", "vp9", "--gpus", "0",
        "--workers", "1", "--sampling", "keyframe", "--frames", "4", "--size", "32", "--width", "0.25",
        "--repeats", "1", "--batch-size", "2", "--decoders", "pyav,dali-cpu", "--crop", "frame", "--out", str(out)])
    assert result.exit_code == 0, result.output
    modes = json.loads((out / "report.json").read_text())["modes"]
    assert list(modes)[:2] == ["scanner keyframe pyav", "scanner keyframe dali-cpu"]
    assert modes["scanner keyframe pyav"]["rows"] == modes["scanner keyframe dali-cpu"]["rows"] == [2]


def test_bench_refuses_an_unknown_decoder(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--decoders", "nvdec,quantum", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown decoder quantum" in result.stderr


def test_bench_without_opencv_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cv2" else real_find_spec(name, *a))
    result = CliRunner().invoke(app, ["bench", "--synthetic", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "pip install 'dfscan[bench]'" in result.stderr
    assert not (tmp_path / "r" / "report.json").exists()
