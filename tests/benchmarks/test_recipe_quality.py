"""The recipe benchmark: without --with-test its runs never see a test-split video; each seed is a real
`train` run whose validation AUC, times and spread are reported."""

import json

import pytest

from dfscan.benchmarks.recipe_quality import measure, parse_settings, tuning_tree
from dfscan.training.faceforensics import FFOptions
from tests.training.ff_media import write_ff_tree


def test_the_tuning_tree_holds_train_and_val_videos_only(tmp_path):
    written = write_ff_tree(tmp_path / "ff", parts=("train", "val", "test"), frames=4)
    tree, left_out = tuning_tree(tmp_path / "ff", tmp_path / "tuning", FFOptions())
    present = sorted(str(p.relative_to(tree)) for p in tree.rglob("*.mp4"))
    assert present == sorted(written[:8]) and left_out == 4  # the test pair's four videos stay out
    assert (tree / written[0]).stat().st_ino == (tmp_path / "ff" / written[0]).stat().st_ino  # linked, not copied


def test_each_seed_is_a_training_run_and_the_report_has_its_spread(tmp_path):
    write_ff_tree(tmp_path / "ff", parts=("train", "val", "test"))
    report = measure(tmp_path / "ff", tmp_path / "work", "ff-residual", seeds=[0, 1], with_test=False, epochs=1,
                     settings={"frames": 4, "size": 40, "spatial_crop": 34})
    assert [run["seed"] for run in report["runs"]] == [0, 1]
    assert all(run["val_videos"] == 4 and run["train_videos"] == 4 and "test_auc" not in run for run in report["runs"])
    assert report["test_auc"] is None and report["test_videos_left_out"] == 4
    aucs = [run["val_auc"] for run in report["runs"]]
    assert report["val_auc"]["min"] == round(min(aucs), 4) and report["val_auc"]["max"] == round(max(aucs), 4)
    saved = json.loads((tmp_path / "work" / "recipe-quality.json").read_text())
    assert saved["runs"] == report["runs"] and saved["settings"]["arch"] == "residual-cnn"
    assert (saved["settings"]["frames"], saved["settings"]["spatial_crop"]) == (4, 34)
    for seed in (0, 1):
        config = json.loads((tmp_path / "work" / f"seed-{seed}" / "config.json").read_text())
        assert (config["seed"], config["epochs"], config["frames"], config["recipe"]) == (seed, 1, 4, "ff-residual")
        assert config["data"] == str(tmp_path / "work" / "tuning_data")


def test_set_reads_each_value_as_its_field_type_and_refuses_unknown_fields():
    assert parse_settings(["self_blend=1", "photometric=false", "batch_size=8", "decoder=pyav"]) == {
        "self_blend": 1.0, "photometric": False, "batch_size": 8, "decoder": "pyav"}
    assert isinstance(parse_settings(["self_blend=1"])["self_blend"], float)
    with pytest.raises(ValueError, match="TrainConfig field, got 'blend=1'"):
        parse_settings(["blend=1"])
