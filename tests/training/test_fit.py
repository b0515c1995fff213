"""Training end to end on synthetic data: it learns, it reads through kernels, it leaves a complete run
folder, and evaluation reads the model back."""

import csv
import dataclasses
import json
import time

import pytest

from dfscan.kernels.artifact import load_model, sha256_file
from dfscan.kernels.clips import ClipReader
from dfscan.training.splits import load_split
from dfscan.training.evaluate import EvalConfig, evaluate
from dfscan.training.fit import TrainConfig, train
from dfscan.training.synth import SynthConfig, synth

RUN_FILES = {"model.keras", "model.json", "config.json", "split.json", "history.csv", "metrics.json", "roc.png",
             "training.png"}
METRIC_KEYS = {"n_videos", "accuracy", "balanced_accuracy", "roc_auc", "log_loss", "eer", "precision", "recall",
               "f1", "confusion"}

# The learning run: a small cnn-lstm (F=8, S=32, width 0.25) on 240 synthetic 64x64 videos, 300 steps.
LEARN = {"arch": "cnn-lstm", "frames": 8, "size": 32, "width": 0.25, "batch_size": 8, "lr": 1e-3, "epochs": 12,
         "steps_per_epoch": 25, "early_stopping_patience": 12, "lr_patience": 12, "backbone_weights": "none",
         "seed": 0, "verbose": 0}


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    started = time.monotonic()
    synth(root / "train", SynthConfig(videos=240, frames_per_video=16, width=64, height=64, seed=1))
    synth(root / "heldout", SynthConfig(videos=40, frames_per_video=16, width=64, height=64, seed=2))
    synth_seconds = time.monotonic() - started

    calls = []
    original = ClipReader.read

    def counting(self, paths, offsets=None):
        calls.append((len(paths), None if offsets is None else [int(o) for o in offsets]))
        return original(self, paths, offsets)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClipReader, "read", counting)
        started = time.monotonic()
        result = train(TrainConfig(data=str(root / "train"), out=str(root / "run"), **LEARN))
        train_seconds = time.monotonic() - started
    print(f"\nlearning run: synth {synth_seconds:.1f} s, train {train_seconds:.1f} s "
          f"(fit {result.metrics['training']['fit_seconds']} s)")
    return {"root": root, "run": root / "run", "result": result, "calls": calls, "train_seconds": train_seconds}


def test_learns_synthetic_fakes_and_generalises_to_another_seed(learned):
    started = time.monotonic()
    metrics = evaluate(EvalConfig(data=str(learned["root"] / "heldout"), model=str(learned["run"]), split="all"))
    print(f"\nheld-out (seed 2): roc_auc {metrics['roc_auc']:.3f}, accuracy {metrics['accuracy']:.3f}, "
          f"evaluate {time.monotonic() - started:.1f} s, train {learned['train_seconds']:.1f} s")
    assert metrics["n_videos"] == 40 and metrics["n_unreadable"] == 0
    assert metrics["roc_auc"] >= 0.9
    assert METRIC_KEYS <= set(metrics)
    assert json.loads(json.dumps(metrics)) == metrics  # one JSON object, no NaN


def test_training_reads_through_kernels(learned):
    calls = learned["calls"]
    split = load_split(learned["run"] / "split.json")
    assert sum(n for n, _ in calls) >= len(split.train) + len(split.val) + len(split.test)
    # temporal jitter is a shifted sampling plan inside kernels, not a second decoder
    shifted = [o for _, offsets in calls if offsets for o in offsets if o != 0]
    assert shifted and all(abs(o) <= 2 for o in shifted)


def test_run_folder_is_complete(learned):
    run = learned["run"]
    assert {p.name for p in run.iterdir()} == RUN_FILES  # the checkpoint is gone, no temporary files
    card = json.loads((run / "model.json").read_text())
    assert card["sha256"] == sha256_file(run / "model.keras")
    assert (card["arch"], card["frames"], card["size"], card["sampling"]) == ("cnn-lstm", 8, 32, "uniform")
    assert card["class_names"] == ["real", "fake"] and card["threshold"] == 0.5
    assert "255" in card["input_normalisation"] and card["input"]["dtype"] == "uint8"
    assert card["dataset"]["train"]["videos"] + card["dataset"]["val"]["videos"] + card["dataset"]["test"]["videos"] == 240
    assert card["dataset"]["split_method"] == "stratified"
    assert {"keras", "numpy", "av", "python"} <= set(card["versions"])
    assert METRIC_KEYS <= set(card["metrics"]["test"])
    # The scope: what the model saw, for every reader's "untested" rule and the scan's alarms.
    scope, test = card["scope"], card["metrics"]["test"]
    assert (scope["data"], scope["layout"], scope["long_side"]) == ("synthetic", "folders", [64.0, 64.0])
    assert scope["videos"]["test"] == {"real": test["n_real"], "fake": test["n_fake"]}
    assert scope["test_called_fake"] == pytest.approx((test["confusion"][0][1] + test["confusion"][1][1]) / 48, abs=1e-4)
    quantiles = scope["test_p_fake"]
    assert len(quantiles["real"]) == len(quantiles["fake"]) == len(quantiles["levels"]) == 9
    assert quantiles["real"][4] < quantiles["fake"][4]  # it learned: fakes score higher at the median
    assert "face_found" not in scope  # a whole-frame model

    config = json.loads((run / "config.json").read_text())
    # config.json is the resolved config as JSON (tuples read back as lists)
    assert config == json.loads(json.dumps(dataclasses.asdict(TrainConfig(data=config["data"], out=config["out"],
                                                                          **LEARN))))

    split = json.loads((run / "split.json").read_text())
    assert not set(split["test"]) & (set(split["train"]) | set(split["val"]))

    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == card["training"]["epochs_run"] == 12
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n_videos"] == len(split["test"]) == 48
    for png in ("roc.png", "training.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_test_split_matches_the_card(learned, tmp_path):
    plot = tmp_path / "roc.png"
    metrics = evaluate(EvalConfig(data=str(learned["root"] / "train"), model=str(learned["run"] / "model.keras"),
                                  split="test", plot=str(plot)))
    card = load_model(learned["run"]).card
    assert metrics["n_videos"] == card["metrics"]["test"]["n_videos"] == 48
    # the same frames through the same compiled step: the card's numbers come back
    assert metrics["roc_auc"] == pytest.approx(card["metrics"]["test"]["roc_auc"])
    assert metrics["confusion"] == card["metrics"]["test"]["confusion"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="split 'all'"):
        evaluate(EvalConfig(data=str(learned["root"] / "heldout"), model=str(learned["run"]), split="test"))


@pytest.mark.slow
def test_resnet50_lstm_trains_on_cpu(tmp_path):
    """One step of the ResNet50-LSTM (random backbone) through the whole run folder. Everything is used
    for training (no validation, no test part), which also covers runs too small to hold anything out;
    the XLA compile of ResNet50 is covered in test_models."""
    synth(tmp_path / "data", SynthConfig(videos=4, frames_per_video=6, width=32, height=32, seed=5))
    result = train(TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), arch="resnet50-lstm",
                               frames=2, size=32, batch_size=2, epochs=1, steps_per_epoch=1, test_fraction=0,
                               val_fraction=0, backbone_weights="none", verbose=0))
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_FILES
    assert result.history.keys() == {"loss", "accuracy", "learning_rate"}  # no validation part
    assert result.metrics["test"]["n_videos"] == 0 and result.metrics["test"]["roc_auc"] is None
    loaded = load_model(tmp_path / "run")
    assert loaded.card["arch"] == "resnet50-lstm" and loaded.card["backbone_weights"] == "none"
    assert "BGR" in loaded.card["input_normalisation"] and loaded.card["dataset"]["train"]["videos"] == 4


def test_celeb_df_layout_trains_without_its_test_videos(tmp_path, monkeypatch):
    """A Celeb-DF v2 shaped tree of real (synthetic) videos: the official list is the test part and the
    only videos read with training-time augmentation are the others."""
    import shutil

    from dfscan.training.layouts import read_celeb_test_list

    synth(tmp_path / "src", SynthConfig(videos=16, frames_per_video=6, width=32, height=32, seed=9))
    root = tmp_path / "celeb"
    names = {"real": ["Celeb-real/id0_0000.mp4", "Celeb-real/id1_0001.mp4", "YouTube-real/00001.mp4",
                      "YouTube-real/00002.mp4", "Celeb-real/id2_0002.mp4", "YouTube-real/00003.mp4",
                      "Celeb-real/id3_0003.mp4", "YouTube-real/00004.mp4"],
             "fake": [f"Celeb-synthesis/id{i}_id{i + 1}_000{i}.mp4" for i in range(8)]}
    for label, targets in names.items():
        for source, target in zip(sorted((tmp_path / "src" / label).iterdir()), targets):
            (root / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / target)
    listed = ["1 " + names["real"][0], "1 " + names["real"][2], "0 " + names["fake"][0], "0 " + names["fake"][1]]
    (root / "List_of_testing_videos.txt").write_text("\n".join(listed) + "\n")
    test_videos = {item.path for item in read_celeb_test_list(root / "List_of_testing_videos.txt")}

    shifted = []
    original = ClipReader.read

    def recording(self, paths, offsets=None):
        shifted.extend(p for p, o in zip(paths, offsets or [0] * len(paths)) if o)
        return original(self, paths, offsets)

    monkeypatch.setattr(ClipReader, "read", recording)
    result = train(TrainConfig(data=str(root), out=str(tmp_path / "run"), frames=2, size=16, width=0.125,
                               batch_size=4, epochs=1, steps_per_epoch=3, backbone_weights="none", verbose=0))
    split = load_split(tmp_path / "run" / "split.json")
    assert split.method == "official-test-list" and set(split.test) == test_videos
    assert not test_videos & (set(split.train) | set(split.val))
    assert result.card["dataset"]["layout"] == "celeb-df-v2" and result.card["dataset"]["test"]["real"] == 2
    assert shifted and not {str(root / p) for p in test_videos} & set(shifted)
    metrics = evaluate(EvalConfig(data=str(root), model=str(tmp_path / "run"), split="test"))
    assert metrics["n_videos"] == 4 and metrics["layout"] == "celeb-df-v2"
    assert metrics["confusion"][0][0] + metrics["confusion"][0][1] == 2  # two real test videos
