"""Stratified splits: reproducible by seed, per-class fractions, saved and loaded as split.json."""

from pathlib import Path

from dfscan.training.layouts import REAL, scan_dataset
from dfscan.training.splits import load_split, make_split, save_split


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def test_stratified_split_reproducible_and_saved(tmp_path):
    for i in range(50):
        _touch(tmp_path, f"real/r{i:02d}.mp4")
    for i in range(200):
        _touch(tmp_path, f"fake/f{i:03d}.mp4")
    dataset = scan_dataset(tmp_path)
    split = make_split(dataset, seed=5)
    assert split == make_split(dataset, seed=5)
    assert split != make_split(dataset, seed=6)
    labels = dataset.labels()
    test_real = sum(labels[p] == REAL for p in split.test)
    assert (test_real, len(split.test) - test_real) == (10, 40)  # 20 % of each class
    assert len(split.val) == 4 + 16  # 10 % of what is left, per class
    assert len(set(split.train) | set(split.val) | set(split.test)) == 250
    save_split(split, tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == split
