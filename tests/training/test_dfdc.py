"""The DFDC layout: labels from each part's metadata.json, every fake grouped with its original so no
split divides them, the 1:5 class imbalance met by class-balanced batches, and malformed metadata refused
in one line that names the file."""

import json
from pathlib import Path

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from tests.media import write_index_video
from dfscan.training.batches import balanced_indices
from dfscan.training.clip_cache import ClipSource
from dfscan.training.dfdc import read_metadata
from dfscan.training.layouts import FAKE, REAL, detect_layout, scan_dataset
from dfscan.training.splits import make_split


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _write_part(root: Path, part: str, metadata: dict, on_disk: list[str]) -> None:
    folder = root / part
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    for name in on_disk:
        _touch(folder, name)


@pytest.fixture(scope="module")
def dfdc_tree(tmp_path_factory):
    """Two parts, 20 originals each with 5 fakes (1:5, as in DFDC); in part 1 also 3 fakes of an original
    in part 0 and 2 fakes of an original that is not on disk; one listed file missing, one unlisted."""
    root = tmp_path_factory.mktemp("dfdc")
    originals = {}  # original name -> its fakes
    for p in range(2):
        metadata, names = {}, []
        for i in range(20):
            real = f"r{p}{i:02d}aaaaaa.mp4"
            metadata[real] = {"label": "REAL", "split": "train", "original": None}
            originals[real] = [f"f{p}{i:02d}{k}aaaaa.mp4" for k in range(5)]
            for fake in originals[real]:
                metadata[fake] = {"label": "FAKE", "split": "train", "original": real}
            names += [real, *originals[real]]
        if p == 1:
            for k in range(3):  # made from part 0's first original
                metadata[f"x{k}bbbbbbbb.mp4"] = {"label": "FAKE", "split": "train", "original": "r000aaaaaa.mp4"}
                originals["r000aaaaaa.mp4"].append(f"x{k}bbbbbbbb.mp4")
            for k in range(2):  # its original is in no part we have
                metadata[f"y{k}cccccccc.mp4"] = {"label": "FAKE", "split": "train", "original": "gonezzzzzz.mp4"}
            names += [f"x{k}bbbbbbbb.mp4" for k in range(3)] + [f"y{k}cccccccc.mp4" for k in range(2)]
            metadata["missingzzz.mp4"] = {"label": "REAL", "split": "train", "original": None}
            names.append("unlistedzz.mp4")
        _write_part(root, f"dfdc_train_part_{p}", metadata, names)
    return root, originals


def test_labels_groups_and_notes(dfdc_tree):
    root, _ = dfdc_tree
    assert detect_layout(root) == "dfdc"
    dataset = scan_dataset(root)
    labels = dataset.labels()
    assert dataset.layout == "dfdc" and len(labels) == 40 + 200 + 5
    assert labels["dfdc_train_part_0/r000aaaaaa.mp4"] == REAL and labels["dfdc_train_part_1/f1194aaaaa.mp4"] == FAKE
    assert sum(label == REAL for label in labels.values()) == 40
    groups = {item.path: item.group for item in dataset.items}
    assert groups["dfdc_train_part_1/x0bbbbbbbb.mp4"] == groups["dfdc_train_part_0/r000aaaaaa.mp4"] == "r000aaaaaa.mp4"
    assert groups["dfdc_train_part_1/y1cccccccc.mp4"] == "gonezzzzzz.mp4"
    assert "dfdc_train_part_1/missingzzz.mp4" not in labels and "dfdc_train_part_1/unlistedzz.mp4" not in labels
    assert dataset.notes == (
        "DFDC: 40 real and 205 fake videos in 2 parts, 41 groups (a real video and the fakes made from it) that no "
        "split divides; training draws class-balanced batches",
        "DFDC: 1 videos listed in metadata.json are not on disk (left out, e.g. dfdc_train_part_1/missingzzz.mp4)",
        "DFDC: 1 videos are in no metadata.json (left out, unlabelled, e.g. dfdc_train_part_1/unlistedzz.mp4)")


def test_no_original_in_two_parts_and_both_classes_everywhere(dfdc_tree):
    root, originals = dfdc_tree
    dataset = scan_dataset(root, layout="dfdc")
    split = make_split(dataset, seed=7)
    assert split.method == "grouped" and split == make_split(dataset, seed=7) and split != make_split(dataset, seed=8)
    part_of = {path: name for name in ("train", "val", "test") for path in getattr(split, name)}
    assert sorted(part_of) == sorted(dataset.labels())  # every video in exactly one part
    # the leak check: an original and every fake made from it are in one part, whichever part holds them
    by_name = {Path(p).name: p for p in part_of}
    for original, fakes in originals.items():
        assert len({part_of[by_name[name]] for name in (original, *fakes)}) == 1, original
    assert part_of["dfdc_train_part_1/y0cccccccc.mp4"] == part_of["dfdc_train_part_1/y1cccccccc.mp4"]
    # 40 groups with a real video: 8 test, 3 validation, 29 train; the one without: train
    labels = dataset.labels()
    reals = {name: sum(labels[p] == REAL for p in getattr(split, name)) for name in ("train", "val", "test")}
    assert reals == {"train": 29, "val": 3, "test": 8}
    assert len(split.test) == 8 * 6 + 3 * (by_name["r000aaaaaa.mp4"] in split.test)
    # the 1:5 imbalance is met as Celeb-DF's is: training batches draw both classes equally
    train_labels = np.array([labels[p] for p in split.train])
    assert (train_labels == REAL).mean() < 0.2
    rows = balanced_indices(train_labels, 32, np.random.default_rng(0))
    assert (train_labels[rows] == FAKE).sum() == 16


def test_one_part_as_the_root_and_generated_clips_read(tmp_path):
    """A single part folder works as the dataset root, and tiny real videos under DFDC names are read."""
    metadata = {"aaaaaaaaaa.mp4": {"label": "REAL", "original": None},
                "bbbbbbbbbb.mp4": {"label": "FAKE", "original": "aaaaaaaaaa.mp4"}}
    part = tmp_path / "dfdc_train_part_3"
    part.mkdir()
    (part / "metadata.json").write_text(json.dumps(metadata))
    for name in metadata:
        write_index_video(part / name, frames=6, width=32, height=32)
    assert detect_layout(part) == detect_layout(tmp_path) == "dfdc"
    (part / "real").mkdir()  # a real/ and fake/ tree with a metadata.json of its own stays a folders tree
    assert detect_layout(part) == "folders" and detect_layout(tmp_path) == "dfdc"
    (part / "real").rmdir()
    dataset = scan_dataset(part)
    assert [(i.path, i.label, i.group) for i in dataset.items] == [
        ("aaaaaaaaaa.mp4", REAL, "aaaaaaaaaa.mp4"), ("bbbbbbbbbb.mp4", FAKE, "aaaaaaaaaa.mp4")]
    split = make_split(dataset)
    assert split.train == ("aaaaaaaaaa.mp4", "bbbbbbbbbb.mp4") and split.val == split.test == ()  # one group
    source = ClipSource(ClipReader(ClipSpec(frames=4, size=16, decoder="pyav")), part)
    assert source.readable(list(dataset.items)) == list(dataset.items) and not source.errors


@pytest.mark.parametrize("text, reason", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("[1, 2]", "expected an object of file name: entry, got a list"),
    ('{"a.mp4": "REAL"}', "'a.mp4' has no label REAL or FAKE"),
    ('{"a.mp4": {"label": "real"}}', "'a.mp4' has no label REAL or FAKE"),
    ('{"a.mp4": {"label": "FAKE", "original": null}}', "the fake 'a.mp4' names no original"),
    ('{"../a.mp4": {"label": "REAL"}}', "'../a.mp4' is not a file name"),
])
def test_malformed_metadata_is_one_line_naming_the_file(tmp_path, text, reason):
    path = tmp_path / "dfdc_train_part_0" / "metadata.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        read_metadata(path)
    assert str(caught.value) == f"{path}: malformed metadata.json: {reason}"
    with pytest.raises(ValueError, match="malformed metadata.json"):
        scan_dataset(tmp_path)  # auto finds the part, then refuses it
