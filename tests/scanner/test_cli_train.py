"""`dfscan train` on the command line: a model no better than chance is called that in plain words,
and `--fail-below` turns it into exit 1 (the run folder is kept). The training itself is stood in for:
what is under test is what the command says and returns for given metrics."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import dfscan.training.fit
from dfscan.kernels.trust import metric_warnings
from dfscan.cli import app

runner = CliRunner()
WEAK = {"n_videos": 10, "accuracy": 0.5, "roc_auc": 0.52, "confusion": [[5, 0], [5, 0]]}


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """`dfscan train` arguments whose run ends with the issue's weak model (AUC 0.52, all real)."""
    (tmp_path / "data").mkdir()
    seen = []

    def fake_train(config, say=None):
        seen.append(config)
        metrics = {"test": WEAK, "val": None, "training": {}}
        warnings = metric_warnings(WEAK, "test")
        return dfscan.training.fit.TrainResult(run_dir=config.out, card={}, metrics=metrics, history={},
                                        warnings=tuple(warnings))

    monkeypatch.setattr(dfscan.training.fit, "train", fake_train)
    return ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")], seen


def test_a_weak_model_is_named_and_fail_below_exits_1(trained):
    args, seen = trained
    result = runner.invoke(app, [*args, "--fail-below", "0.6", "--crop", "face", "--face-margin", "1.5"])
    assert result.exit_code == 1
    assert (seen[0].crop, seen[0].face_margin) == ("face", 1.5)
    assert json.loads(result.stdout)["warnings"] == metric_warnings(WEAK)
    assert result.stderr.splitlines() == [
        "dfscan: warning: test AUC 0.52 is near chance (0.5): the model does not tell real from fake",
        "dfscan: warning: it calls every test video real",
        "dfscan: warning: measured on only 10 test videos",
        "dfscan: to do better: train on more videos (hundreds per class), or try the small-data settings of "
        "`dfscan demo`: --frames 8 --size 32 --width 0.25 --lr 1e-3",
        f"dfscan: error: test AUC 0.520 is below --fail-below 0.6; the run is kept in {seen[0].out}"]
    passed = runner.invoke(app, [*args, "--fail-below", "0.5"])
    assert passed.exit_code == 0 and "dfscan: error" not in passed.stderr  # warned, but above the bar


@pytest.mark.parametrize("extra, message", [
    (["--fail-below", "1.5"], "dfscan: error: --fail-below is an AUC between 0 and 1, got 1.5"),
    (["--crop", "mouth"], "dfscan: error: unknown crop 'mouth'; expected one of frame, face"),
    (["--crop", "face", "--face-margin", "9"], "dfscan: error: face margin must be between 1.0 and 3.0, got 9.0"),
    (["--frames", "300"], "dfscan: error: dfscan reads at most 256 frames of at most 1024 pixels; got 300 frames of "
                          "64 pixels"),
    (["--size", "2048"], "dfscan: error: dfscan reads at most 256 frames of at most 1024 pixels; got 20 frames of "
                         "2048 pixels"),
])
def test_bad_train_arguments_get_one_line_and_exit_2(trained, extra, message):
    args, seen = trained
    result = runner.invoke(app, [*args, *extra])
    assert (result.exit_code, result.stderr.strip(), seen) == (2, message, [])
