"""The typer layer of `dfscan run` and `dfscan report`: exit codes, one-line errors, the JSON summary."""

import json

import pyarrow.dataset as pads
import pytest
from typer.testing import CliRunner

from dfscan.kernels.scope import SYNTHETIC_MARKER

from dfscan.cli import app
from dfscan.scanner.sink import OutDirLock
from tests.scanner.conftest import make_videos

runner = CliRunner()
SUMMARY_KEYS = {"run_id", "archive", "files_seen", "scanned", "skipped", "ok", "errors", "errors_by_class",
                "conclusions", "alarms", "seconds", "videos_per_s", "startup_seconds", "stage_seconds", "out"}


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


@pytest.mark.usefixtures("ray_cluster")
def test_a_synthetic_model_on_real_footage_concludes_untested_and_raises_alarms(tmp_path, synthetic_tiny_model):
    archive = tmp_path / "archive"
    make_videos(archive, [f"clip{i}.mp4" for i in range(10)])
    out = tmp_path / "verdicts"
    args = ["run", str(archive), "--model", str(synthetic_tiny_model), "--out", str(out), "--gpus", "0",
            "--workers", "1", "--batch-size", "4", "--json"]
    result = runner.invoke(app, args + ["--fail-on-alarm"])
    assert result.exit_code == 1, result.output  # the rows are committed, and cron pages someone
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["conclusions"] == {"untested": 10} and summary["ok"] == 10
    assert [alarm["kind"] for alarm in summary["alarms"]] == ["ONE_CLASS", "UNTESTED"]
    alarms = [line for line in result.stderr.splitlines() if line.startswith("dfscan: alarm: ")]
    assert alarms[0].startswith("dfscan: alarm: the model called 10 of 10 files fake (p_fake ")
    assert alarms[1] == ("dfscan: alarm: 10 of 10 conclusions are untested, most because this model was trained on "
                         "synthetic videos only; it has never been measured on real footage")
    table = pads.dataset(str(out)).to_table()
    assert set(table["conclusion"].to_pylist()) == {"untested"} and set(table["verdict"].to_pylist()) == {"fake"}

    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0, report.output
    assert "newest verdict per file: real 0, fake 0, inconclusive 0, untested 10, error 0" in report.stdout
    assert "dfscan: alarm: 10 of 10 conclusions are untested" in report.stdout
    assert "scope: trained and tested on synthetic videos only (dfscan synth)" in report.stdout

    # The same files as a `dfscan synth` archive are the model's own kind: its conclusions stand.
    (archive / SYNTHETIC_MARKER).write_text("{}")
    again = runner.invoke(app, args + ["--full"])
    assert again.exit_code == 0, again.output  # without --fail-on-alarm, an alarm is no failure
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["conclusions"] == {"fake": 10}
    assert [alarm["kind"] for alarm in summary["alarms"]] == ["ONE_CLASS"]  # a threshold of 0 calls all fake


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
