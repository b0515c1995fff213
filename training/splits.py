"""Splits: dividing a dataset's videos into train, validation and test parts, saved as split.json.

The official Celeb-DF v2 test list is used where the layout has one, FaceForensics++'s official
train/val/test parts as they are, DFDC's groups (a real video and the fakes made from it) in a seeded
split of whole groups, otherwise a seeded stratified split; ``summarise`` gives the per-part class
counts for the model card.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dfscan.kernels.atomic import atomic_write_bytes
from dfscan.training.layouts import FAKE, REAL, Dataset

@dataclasses.dataclass(frozen=True)
class Split:
    method: str  # "official-test-list" | "official-splits" | "grouped" | "stratified"
    seed: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        return cls(method=data["method"], seed=int(data["seed"]), train=tuple(data["train"]),
                   val=tuple(data["val"]), test=tuple(data["test"]))


def _take(n: int, fraction: float) -> int:
    """How many of n go to a held-out part: at least one when there are two or more to split."""
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


def _official_split(dataset: Dataset, seed: int) -> Split:
    """The layout's official test and validation parts; every other video trains."""
    held_out = set(dataset.official_test or ()) | set(dataset.official_val or ())
    train = [item.path for item in dataset.items if item.path not in held_out]
    return Split(method="official-splits", seed=seed, train=tuple(sorted(train)),
                 val=tuple(sorted(dataset.official_val or ())), test=tuple(sorted(dataset.official_test or ())))


def _grouped_split(dataset: Dataset, seed: int, test_fraction: float, val_fraction: float) -> Split:
    """Whole groups to each part, stratified by whether a group holds a real video, so a fake and the
    video it was made from are always in the same part."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[str]] = {}
    for item in dataset.items:
        members.setdefault(item.group or item.path, []).append(item.path)
    with_real = {item.group or item.path for item in dataset.items if item.label == REAL}
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for stratum in (sorted(with_real), sorted(set(members) - with_real)):
        groups = np.array(stratum, dtype=object)[rng.permutation(len(stratum))]
        n_test = _take(len(groups), test_fraction)
        n_val = _take(len(groups) - n_test, val_fraction)
        for name, chosen in (("test", groups[:n_test]), ("val", groups[n_test:n_test + n_val]),
                             ("train", groups[n_test + n_val:])):
            parts[name] += [path for group in chosen for path in members[group]]
    return Split(method="grouped", seed=seed, **{name: tuple(sorted(paths)) for name, paths in parts.items()})


def make_split(dataset: Dataset, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1) -> Split:
    """The official parts where the layout has them (FaceForensics++: test and validation; Celeb-DF v2:
    the test list, then a stratified validation slice of the rest); for grouped videos (DFDC) a seeded
    split of whole groups; otherwise a stratified 80/20 split, then a stratified validation slice of
    the training part. The same seed gives the same split."""
    if dataset.official_val is not None:
        return _official_split(dataset, seed)
    if dataset.official_test is None and any(item.group is not None for item in dataset.items):
        return _grouped_split(dataset, seed, test_fraction, val_fraction)
    rng = np.random.default_rng(seed)
    official = set(dataset.official_test or ())
    train: list[str] = []
    val: list[str] = []
    test: list[str] = sorted(official)
    for label in (REAL, FAKE):
        paths = np.array(sorted(i.path for i in dataset.items if i.label == label and i.path not in official))
        paths = paths[rng.permutation(len(paths))]
        if dataset.official_test is None:
            n_test = _take(len(paths), test_fraction)
            test += paths[:n_test].tolist()
            paths = paths[n_test:]
        n_val = _take(len(paths), val_fraction)
        val += paths[:n_val].tolist()
        train += paths[n_val:].tolist()
    method = "official-test-list" if dataset.official_test is not None else "stratified"
    return Split(method=method, seed=seed, train=tuple(sorted(train)), val=tuple(sorted(val)),
                 test=tuple(sorted(test)))


def save_split(split: Split, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, json.dumps(split.to_dict(), indent=1).encode())


def load_split(path: str | os.PathLike) -> Split:
    return Split.from_dict(json.loads(Path(path).read_text()))


def summarise(dataset: Dataset, split: Split) -> dict:
    """Counts per part and class, for the model card."""
    labels = dataset.labels()

    def counts(paths: Sequence[str]) -> dict[str, int]:
        fake = sum(labels[p] == FAKE for p in paths)
        return {"videos": len(paths), "real": len(paths) - fake, "fake": fake}

    return {"root": dataset.root, "layout": dataset.layout, "split_method": split.method, "seed": split.seed,
            "all": counts([i.path for i in dataset.items]), "train": counts(split.train),
            "val": counts(split.val), "test": counts(split.test),
            "official_test_missing": len(dataset.missing_test), "synthetic": dataset.synthetic,
            **({"selection": dataset.selection} if dataset.selection else {}),
            **({"notes": list(dataset.notes)} if dataset.notes else {})}
