"""The typer layer of `dfscan run` and `dfscan report`: exit codes, one-line errors, the JSON summary."""

import json

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.sink import OutDirLock
from tests.scanner.conftest import make_videos

runner = CliRunner()
SUMMARY_KEYS = {"run_id", "archive", "files_seen", "scanned", "skipped", "ok", "errors", "errors_by_class",
                "seconds", "videos_per_s", "stage_seconds", "out"}


@pytest.mark.usefixtures("ray_cluster")
def test_run_json_summary_then_report(tmp_path, tiny_model):
    archive = tmp_path / "archive"
    make_videos(archive, ["x/a.mp4", "x/b.mp4", "c.MOV"])
    (archive / "notes.txt").write_text("not a video")
    (archive / "broken.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "verdicts"
    result = runner.invoke(app, ["run", str(archive), "--model", str(tiny_model), "--out", str(out), "--gpus", "0",
                                 "--workers", "1", "--batch-size", "2", "--in-flight", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == SUMMARY_KEYS
    (manifest,) = (out / "_runs").glob("*.json")
    assert json.loads(manifest.read_text())["config"]["batches_in_flight_per_worker"] == 3
    trust = json.loads(manifest.read_text())["model_trust"]  # the tiny test model's card records no metrics
    assert (trust["untrusted"], trust["summary"], trust["threshold"]) == (True, "no measured quality on its card", 0.5)
    assert (summary["files_seen"], summary["scanned"], summary["ok"], summary["errors"]) == (4, 4, 3, 1)
    assert summary["errors_by_class"] == {"CONTAINER_INVALID": 1}
    assert set(summary["stage_seconds"]) == {"probe", "decode", "faces", "inference", "write"}

    again = runner.invoke(app, ["run", str(archive), "--model", str(tiny_model), "--out", str(out), "--gpus", "0",
                                "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout.strip().splitlines()[-1])["skipped"] == 4

    csv_path = tmp_path / "newest.csv"
    report = runner.invoke(app, ["report", str(out), "--csv", str(csv_path)])
    assert report.exit_code == 0, report.output
    assert "  files: 4   rows: 4" in report.stdout
    assert "errors by class: CONTAINER_INVALID 1" in report.stdout
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 5  # header + one newest row per file


@pytest.mark.parametrize("args, message", [
    (["run", "{missing}", "--model", "{model}", "--out", "{out}"], "archive not found"),
    (["run", "{archive}", "--model", "{missing}", "--out", "{out}"], "model not found"),
    (["run", "{archive}", "--model", "{model}", "--out", "{out}", "--decoder", "nvjpeg"], "unknown decoder"),
    (["run", "{archive}", "--model", "{model}", "--out", "{out}", "--threshold", "1.5"], "threshold"),
    (["run", "{archive}", "--model", "{model}", "--out", "{out}", "--sampling", "random"], "unknown sampling"),
    (["run", "{archive}", "--model", "{model}", "--out", "{out}", "--in-flight", "0"], "--in-flight between 1 and 16"),
    (["run", "{archive}", "--model", "{model}", "--out", "{out}", "--batch-timeout", "0"], "--batch-timeout must be"),
    (["report", "{missing}"], "no verdicts"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, tiny_model, args, message):
    archive = tmp_path / "archive"
    archive.mkdir()
    values = {"missing": str(tmp_path / "missing"), "model": str(tiny_model), "out": str(tmp_path / "out"),
              "archive": str(archive)}
    result = runner.invoke(app, [a.format(**values) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_locked_out_dir_exits_2(tmp_path, tiny_model):
    archive = tmp_path / "archive"
    make_videos(archive, ["a.mp4"])
    out = tmp_path / "out"
    out.mkdir()
    with OutDirLock(out, "other-run"):
        result = runner.invoke(app, ["run", str(archive), "--model", str(tiny_model), "--out", str(out),
                                     "--gpus", "0"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_and_evaluate_refuse_bad_arguments(tmp_path):
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--arch", "vgg-lstm", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown architecture" in result.stderr
    result = runner.invoke(app, ["evaluate", "--data", str(tmp_path), "--model", str(tmp_path / "m.keras"),
                                 "--split", "val"])
    assert result.exit_code == 2 and "unknown split" in result.stderr
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--codec", "mpeg1"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
