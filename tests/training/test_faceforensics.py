"""The FaceForensics++ layout: its official train/val/test splits used as they are, so no face (id) is in
two parts; one compression; the chosen methods; DeepFakeDetection and the actors kept out unless asked."""

import dataclasses
import json
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from tests.media import write_index_video
from dfscan.training import faceforensics
from dfscan.training.clip_cache import ClipSource
from dfscan.training.faceforensics import DFD, METHODS, FFOptions
from dfscan.training.layouts import FAKE, REAL, detect_layout, scan_dataset
from dfscan.training.splits import make_split, summarise

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "training" / "data" / "faceforensics_splits"
PRESENT = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")  # FaceShifter is not on disk in the tree
YT, MS = "original_sequences/youtube", "manipulated_sequences"


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _pairs(part: str) -> list[list[str]]:
    """The official pairs as the test reads them itself, from the shipped JSON."""
    return json.loads((SHIPPED / f"{part}.json").read_text())


@pytest.fixture(scope="module")
def ff_tree(tmp_path_factory):
    """Every official real and fake at c23 (four methods; FaceShifter absent), reals and Deepfakes at
    c40, two DeepFakeDetection fakes and their two actors, and two fakes no official pair covers."""
    root = tmp_path_factory.mktemp("ff") / "FaceForensics++"
    for part in ("train", "val", "test"):
        for a, b in _pairs(part):
            for compression in ("c23", "c40"):
                _touch(root, f"{YT}/{compression}/videos/{a}.mp4")
                _touch(root, f"{YT}/{compression}/videos/{b}.mp4")
            for method in PRESENT:
                _touch(root, f"{MS}/{method}/c23/videos/{a}_{b}.mp4")
                _touch(root, f"{MS}/{method}/c23/videos/{b}_{a}.mp4")
            _touch(root, f"{MS}/Deepfakes/c40/videos/{a}_{b}.mp4")
    for rel in ["original_sequences/actors/c23/videos/01__walking_outside.mp4",
                "original_sequences/actors/c23/videos/02__kitchen_pan.mp4",
                f"{MS}/{DFD}/c23/videos/01_02__walking_outside__6PVUPNKJ.mp4",
                f"{MS}/{DFD}/c23/videos/02_01__kitchen_pan__AZ54RT9O.mp4",
                f"{MS}/Deepfakes/c23/videos/000_999.mp4",  # 000 is in test, 999 in train: not a pair
                f"{MS}/Deepfakes/c23/videos/071_087.mp4",  # both train, but not an official pair
                f"{MS}/Deepfakes/c23/masks/videos/071_054.mp4"]:  # masks are not videos of a part
        _touch(root, rel)
    return root


def _ids(path: str) -> set[str]:
    """The face ids a video shows: NNN for a real video, NNN and MMM for a fake NNN_MMM."""
    return set(Path(path).stem.split("_"))


def test_shipped_splits_are_the_official_ones_and_declared_as_package_data():
    counts = {part: len(_pairs(part)) for part in ("train", "val", "test")}
    assert counts == {"train": 360, "val": 70, "test": 70}  # 1000 ids, 720/140/140
    ids = faceforensics.part_of_ids()
    assert len(ids) == 1000 and sorted(ids) == [f"{i:03d}" for i in range(1000)]
    shared = next((p / "data" / "faceforensics" for p in (REPO / "shared", REPO.parent / "shared")
                   if (p / "data" / "faceforensics").is_dir()), None)
    if shared is not None:  # the copy inside the package is the project's shared data, byte for byte
        for part in ("train", "val", "test"):
            assert (SHIPPED / f"{part}.json").read_bytes() == (shared / f"{part}.json").read_bytes()
    # installed without shared/: pyproject ships the three files with the training package
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["dfscan.training"]
    shipped = sorted(p.relative_to(REPO / "training").as_posix() for p in SHIPPED.glob("*.json"))
    assert [p for p in shipped if any(fnmatch(p, g) for g in globs)] == [
        "data/faceforensics_splits/test.json", "data/faceforensics_splits/train.json",
        "data/faceforensics_splits/val.json"]


def test_official_splits_exact_and_no_face_in_two_parts(ff_tree):
    assert detect_layout(ff_tree) == "faceforensics"
    dataset = scan_dataset(ff_tree)  # auto: c23, the five methods where present, no DeepFakeDetection
    assert dataset.layout == "faceforensics"
    split = make_split(dataset, seed=3)
    assert dataclasses.replace(make_split(dataset, seed=4), seed=3) == split  # the official parts, whatever the seed
    assert split.method == "official-splits"
    labels = dataset.labels()
    # exact official membership for chosen ids: the pair [071, 054] trains, [720, 672] validates,
    # [953, 974] tests, and so do its reals and both of its fakes
    for part, (a, b) in (("train", ("071", "054")), ("val", ("720", "672")), ("test", ("953", "974"))):
        paths = set(getattr(split, part))
        assert {f"{YT}/c23/videos/{a}.mp4", f"{YT}/c23/videos/{b}.mp4"} <= paths
        assert {f"{MS}/{m}/c23/videos/{x}.mp4" for m in PRESENT for x in (f"{a}_{b}", f"{b}_{a}")} <= paths
    # every video of the official parts, and nothing else: 2 reals and 2 fakes per method per pair
    for part, pairs in (("train", 360), ("val", 70), ("test", 70)):
        paths = getattr(split, part)
        assert len(paths) == pairs * 2 * (1 + len(PRESENT))
        assert sum(labels[p] == REAL for p in paths) == pairs * 2
        expected = {i for pair in _pairs(part) for i in pair}
        assert set().union(*(_ids(p) for p in paths)) == expected
    # the leak check: no id (so no face) in two parts
    faces = {part: set().union(*(_ids(p) for p in getattr(split, part))) for part in ("train", "val", "test")}
    assert not faces["train"] & faces["val"] and not faces["train"] & faces["test"] and not faces["val"] & faces["test"]
    assert dataset.official_test == split.test and dataset.official_val == split.val
    assert dataset.selection == {"compression": "c23", "methods": list(PRESENT), "include_dfd": False}
    card = summarise(dataset, split)  # the model card's "dataset": what was chosen, and what was left out
    assert card["split_method"] == "official-splits" and card["selection"] == dataset.selection
    assert card["notes"] == list(dataset.notes) and card["test"] == {"videos": 700, "real": 140, "fake": 560}


def test_deepfakedetection_actors_and_odd_names_left_out_by_default(ff_tree):
    dataset = scan_dataset(ff_tree, layout="faceforensics")
    paths = set(dataset.labels())
    assert not any(DFD in p or "/actors/" in p for p in paths)
    assert f"{MS}/Deepfakes/c23/videos/000_999.mp4" not in paths  # straddles test and train
    assert f"{MS}/Deepfakes/c23/videos/071_087.mp4" not in paths  # not an official pair
    assert not any("/masks/" in p for p in paths)
    assert dataset.notes == (
        "FaceForensics++ c23: 1000 real and 4000 fake videos (Deepfakes, Face2Face, FaceSwap, NeuralTextures) in "
        "the official splits: train 3600, val 700, test 700",
        "FaceForensics++: no c23 videos of FaceShifter (left out)",
        "FaceForensics++: 2 videos whose names are not an official id or pair were left out "
        f"(e.g. {MS}/Deepfakes/c23/videos/000_999.mp4)",
        "FaceForensics++: 4 DeepFakeDetection and actors videos have no official split and were left out of train, "
        "val and test (--include-dfd adds them to training only)")


def test_include_dfd_adds_it_to_training_only(ff_tree):
    options = FFOptions(methods=(*METHODS, DFD), include_dfd=True)
    assert FFOptions.parse("c23", None, include_dfd=True).methods == METHODS  # the flag alone is enough
    for chosen in (options, FFOptions.parse("c23", None, include_dfd=True)):
        dataset = scan_dataset(ff_tree, layout="faceforensics", ff_options=chosen)
        split = make_split(dataset)
        unsplit = {p for p in dataset.labels() if DFD in p or "/actors/" in p}
        assert len(unsplit) == 4 and unsplit <= set(split.train)
        assert not unsplit & (set(split.val) | set(split.test))
        assert dataset.labels()[f"{MS}/{DFD}/c23/videos/01_02__walking_outside__6PVUPNKJ.mp4"] == FAKE
        assert dataset.labels()["original_sequences/actors/c23/videos/01__walking_outside.mp4"] == REAL
        assert (len(split.train), len(split.val), len(split.test)) == (3604, 700, 700)
        assert dataset.notes[-1] == ("FaceForensics++: 4 DeepFakeDetection and actors videos (no official split) "
                                     "were added to the training part only")


def test_compression_and_methods_select_only_their_files(ff_tree):
    dataset = scan_dataset(ff_tree, layout="faceforensics", ff_options=FFOptions(compression="c40"))
    paths = list(dataset.labels())
    assert all("/c40/" in p for p in paths)
    assert sum(p.startswith(f"{MS}/Deepfakes/c40/") for p in paths) == 500 and len(paths) == 1500
    assert dataset.selection["methods"] == ["Deepfakes"]  # the only method with c40 videos

    chosen = FFOptions.parse("c23", "Face2Face, FaceSwap,Face2Face")  # spaces and repeats do not matter
    dataset = scan_dataset(ff_tree, layout="faceforensics", ff_options=chosen)
    fakes = [p for p, label in dataset.labels().items() if label == FAKE]
    assert len(fakes) == 2000 and {p.split("/")[1] for p in fakes} == {"Face2Face", "FaceSwap"}
    assert sum(label == REAL for label in dataset.labels().values()) == 1000
    split = make_split(dataset)
    assert len(split.test) == 140 * 3 and {p for p in split.test if "FaceSwap" in p} == {
        f"{MS}/FaceSwap/c23/videos/{x}.mp4" for a, b in _pairs("test") for x in (f"{a}_{b}", f"{b}_{a}")}

    with pytest.raises(ValueError, match=r"at compression raw .*compressions found: c23, c40"):
        scan_dataset(ff_tree, layout="faceforensics", ff_options=FFOptions(compression="raw"))


@pytest.mark.parametrize("compression, methods, include_dfd, message", [
    ("c99", None, False, "unknown compression 'c99'; expected one of raw, c23, c40"),
    ("c23", "Deepfakes,Faceswap", False, "unknown method Faceswap; expected a comma list of Deepfakes, Face2Face, "
                                         "FaceSwap, NeuralTextures, FaceShifter, DeepFakeDetection"),
    ("c23", " , ", False, "no method given; expected a comma list of Deepfakes, Face2Face, FaceSwap, "
                          "NeuralTextures, FaceShifter, DeepFakeDetection"),
    ("c23", "Deepfakes,DeepFakeDetection", False, "DeepFakeDetection has no official split: add --include-dfd to "
                                                  "train on it (training part only)"),
])
def test_bad_options_are_refused(compression, methods, include_dfd, message):
    with pytest.raises(ValueError) as caught:
        FFOptions.parse(compression, methods, include_dfd)
    assert str(caught.value) == message


def test_generated_clips_under_the_real_names_are_read(tmp_path):
    """Tiny real videos under FF++ names: the items' paths open through the scanner's own reader."""
    root = tmp_path / "ff"
    for rel in [f"{YT}/c23/videos/953.mp4", f"{MS}/FaceSwap/c23/videos/953_974.mp4"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_index_video(root / rel, frames=6, width=32, height=32)
    dataset = scan_dataset(root)
    assert [(i.path, i.label) for i in dataset.items] == [
        (f"{MS}/FaceSwap/c23/videos/953_974.mp4", FAKE), (f"{YT}/c23/videos/953.mp4", REAL)]
    assert make_split(dataset).test == tuple(i.path for i in dataset.items)  # [953, 974] is a test pair
    source = ClipSource(ClipReader(ClipSpec(frames=4, size=16, decoder="pyav")), root)
    assert source.readable(list(dataset.items)) == list(dataset.items) and not source.errors
