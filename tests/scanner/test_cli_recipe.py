"""`dfscan train --recipe`: the recipe's settings reach training, flags given still win, an unknown recipe
is one line and exit 2, and a short real run says its estimate and leaves a model the scanner loads."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import dfscan.training.fit
from dfscan.cli import app
from dfscan.kernels.artifact import load_model
from tests.training.ff_media import write_ff_tree

runner = CliRunner()


def test_recipe_settings_reach_the_config_and_flags_given_win(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    seen = []

    def fake_train(config, say=None):
        seen.append(config)
        return dfscan.training.fit.TrainResult(run_dir=config.out, card={}, metrics={"test": {}}, history={})

    monkeypatch.setattr(dfscan.training.fit, "train", fake_train)
    args = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--recipe", "ff-residual"]
    assert runner.invoke(app, [*args, "--epochs", "20", "--frames", "8", "--seed", "3"]).exit_code == 0
    config = seen[0]
    assert (config.arch, config.crop, config.size, config.spatial_crop, config.lr) == ("residual-cnn", "face", 96,
                                                                                        48, 1e-3)
    assert (config.epochs, config.frames, config.seed, config.recipe) == (20, 8, 3, "ff-residual")  # given: kept
    assert runner.invoke(app, args[:5]).exit_code == 0  # no recipe: the flags' own defaults
    assert (seen[1].arch, seen[1].epochs, seen[1].spatial_crop, seen[1].recipe) == ("cnn-lstm", 20, 0, None)


def test_an_unknown_recipe_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--recipe", "x"])
    assert (result.exit_code, result.stderr.splitlines()) == (
        2, ["dfscan: error: unknown recipe 'x'; expected one of ff-residual"])
    assert not (tmp_path / "run").exists()


def test_a_short_recipe_run_says_its_estimate_and_leaves_a_model_the_scanner_loads(tmp_path):
    """Generated clips under official FF++ names: a train pair and a val pair, one epoch."""
    root = tmp_path / "ff"
    write_ff_tree(root, parts=("train", "val"))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(root), "--out", str(run), "--recipe", "ff-residual",
                                 "--epochs", "1", "--frames", "4", "--layout", "faceforensics"])
    assert result.exit_code == 0, result.stderr
    estimate = [line for line in result.stderr.splitlines() if line.startswith("dfscan: recipe ff-residual: ")]
    assert len(estimate) == 1 and estimate[0].startswith(
        "dfscan: recipe ff-residual: 4 training, 4 validation and 0 test videos; about ")
    config = json.loads((run / "config.json").read_text())
    assert (config["recipe"], config["arch"], config["epochs"], config["frames"], config["spatial_crop"]) == (
        "ff-residual", "residual-cnn", 1, 4, 48)
    loaded = load_model(run / "model.keras")  # sha256-checked, safe mode
    assert tuple(loaded.model.inputs[0].shape) == (None, 4, 96, 96, 3)
    assert loaded.card.arch == "residual-cnn" and loaded.card.frames == 4 and loaded.card.size == 96
