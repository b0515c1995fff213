"""`dfscan train` and `dfscan evaluate` with --layout faceforensics and dfdc: the FF++ options reach the
config, bad ones exit 2 in one line, the layout's notes go to stderr, and a malformed DFDC metadata.json
exits 2 naming the file. Nothing here trains: training is stood in for, or stops at the dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import dfscan.training.fit
from dfscan.cli import app
from dfscan.training.faceforensics import FFOptions

runner = CliRunner()
METHODS_MESSAGE = ("dfscan: error: unknown method Faceswap; expected a comma list of Deepfakes, Face2Face, FaceSwap, "
                   "NeuralTextures, FaceShifter, DeepFakeDetection")


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def test_faceforensics_options_reach_the_config_and_notes_reach_stderr(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    seen = []

    def fake_train(config, say=None):
        seen.append(config)
        say("FaceForensics++ c40: a note")
        return dfscan.training.fit.TrainResult(run_dir=config.out, card={}, metrics={"test": {}}, history={})

    monkeypatch.setattr(dfscan.training.fit, "train", fake_train)
    args = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--layout", "faceforensics"]
    result = runner.invoke(app, [*args, "--compression", "c40", "--methods", "Face2Face,FaceSwap", "--include-dfd"])
    assert result.exit_code == 0, result.stderr
    assert seen[0].layout == "faceforensics"
    assert seen[0].faceforensics == FFOptions(compression="c40", methods=("Face2Face", "FaceSwap"), include_dfd=True)
    assert result.stderr.splitlines() == ["dfscan: FaceForensics++ c40: a note"]
    assert runner.invoke(app, args).exit_code == 0 and seen[1].faceforensics == FFOptions()  # c23, five methods


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("extra, message", [
    (["--methods", "Deepfakes,Faceswap"], METHODS_MESSAGE),
    (["--compression", "c99"], "dfscan: error: unknown compression 'c99'; expected one of raw, c23, c40"),
    (["--methods", "DeepFakeDetection"], "dfscan: error: DeepFakeDetection has no official split: add --include-dfd "
                                         "to train on it (training part only)"),
])
def test_bad_faceforensics_options_exit_2_in_one_line(tmp_path, command, extra, message):
    target = ["--out", str(tmp_path / "run")] if command == "train" else ["--model", str(tmp_path / "m.keras")]
    result = runner.invoke(app, [command, "--data", str(tmp_path), *target, "--layout", "faceforensics", *extra])
    assert (result.exit_code, result.stderr.splitlines()) == (2, [message])
    assert not (tmp_path / "run").exists()  # refused before any work


def test_train_says_what_faceforensics_left_out_before_it_stops(tmp_path):
    """Empty placeholder files: the notes come first, then the dataset's own error (nothing is readable)."""
    root = tmp_path / "ff"
    for rel in ["original_sequences/youtube/c23/videos/071.mp4", "original_sequences/youtube/c23/videos/054.mp4",
                "manipulated_sequences/Deepfakes/c23/videos/071_054.mp4",
                "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__talking__ABCDEFGH.mp4"]:
        _touch(root, rel)
    result = runner.invoke(app, ["train", "--data", str(root), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "dfscan: FaceForensics++ c23: 2 real and 1 fake videos (Deepfakes) in the official splits: train 3, val 0, "
        "test 0",
        "dfscan: FaceForensics++: no c23 videos of Face2Face, FaceSwap, NeuralTextures, FaceShifter (left out)",
        "dfscan: FaceForensics++: 1 DeepFakeDetection and actors videos have no official split and were left out of "
        "train, val and test (--include-dfd adds them to training only)",
        f"dfscan: error: training needs readable real and fake videos; {root} has 0 readable training videos of one "
        "class or none"]


def test_malformed_dfdc_metadata_exits_2_naming_the_file(tmp_path):
    metadata = tmp_path / "dfdc" / "dfdc_train_part_0" / "metadata.json"
    metadata.parent.mkdir(parents=True)
    metadata.write_text('{"aaaaaaaaaa.mp4": {"label": "FAKE"}}')
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "dfdc"), "--out", str(tmp_path / "run")])
    assert (result.exit_code, result.stderr.splitlines()) == (
        2, [f"dfscan: error: {metadata}: malformed metadata.json: the fake 'aaaaaaaaaa.mp4' names no original"])
