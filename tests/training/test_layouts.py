"""Layouts and the Celeb-DF v2 test list (1 = real, 0 = fake), and that the official list becomes the
test part without leaking into training."""

import os
from pathlib import Path

import pytest

from dfscan.training.layouts import FAKE, REAL, detect_layout, read_celeb_test_list, scan_dataset
from dfscan.training.splits import make_split

REPO = Path(__file__).resolve().parents[2]
_LIST = Path("data") / "celeb-df-v2" / "List_of_testing_videos.txt"


def _official_list() -> Path | None:
    """The official Celeb-DF v2 test list (tests only read its names): $DFSCAN_CELEB_TEST_LIST, or the
    shared data folder inside or beside the checkout."""
    candidates = [os.environ.get("DFSCAN_CELEB_TEST_LIST", ""), REPO / "shared" / _LIST, REPO.parent / "shared" / _LIST]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


OFFICIAL_LIST = _official_list()


def _generated_list() -> str:
    """A 518-line list shaped like the official one (178 real: 108 Celeb-real + 70 YouTube-real; 340
    fake), for machines without the shared data."""
    lines = [f"1 Celeb-real/id{i % 60}_{i:04d}.mp4" for i in range(108)]
    lines += [f"1 YouTube-real/{i:05d}.mp4" for i in range(70)]
    lines += [f"0 Celeb-synthesis/id{i % 60}_id{(i + 7) % 60}_{i:04d}.mp4" for i in range(340)]
    return "\n".join(lines)


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


@pytest.fixture(params=["official", "generated"])
def celeb_tree(tmp_path, request):
    """A Celeb-DF v2 tree of empty placeholders: the test list's videos plus extra training videos."""
    if request.param == "official" and OFFICIAL_LIST is None:
        pytest.skip("the official Celeb-DF v2 test list is not on this machine (set DFSCAN_CELEB_TEST_LIST)")
    root = tmp_path / "Celeb-DF-v2"
    root.mkdir()
    text = OFFICIAL_LIST.read_text() if request.param == "official" else _generated_list()
    (root / "List_of_testing_videos.txt").write_text(text)
    listed = read_celeb_test_list(root / "List_of_testing_videos.txt")
    for item in listed:
        _touch(root, item.path)
    extra = ([f"Celeb-real/id9{i}_0000.mp4" for i in range(20)] + [f"YouTube-real/9{i:04d}.mp4" for i in range(10)]
             + [f"Celeb-synthesis/id9{i}_id8{i}_0000.mp4" for i in range(120)])
    for rel in extra:
        _touch(root, rel)
    return root, listed, extra


def test_official_list_is_518_lines_with_inverted_labels():
    if OFFICIAL_LIST is None:
        pytest.skip("the official Celeb-DF v2 test list is not on this machine (set DFSCAN_CELEB_TEST_LIST)")
    listed = read_celeb_test_list(OFFICIAL_LIST)
    assert len(listed) == 518
    assert sum(i.label == REAL for i in listed) == 178 and sum(i.label == FAKE for i in listed) == 340
    # "1 <path>" is real and "0 <path>" is fake: our class index for fake is 1, the list's is 0
    first = OFFICIAL_LIST.read_text().splitlines()[0].split(" ")
    assert first[0] == "1" and listed[0].label == REAL and listed[0].path == first[1]
    assert all((i.label == FAKE) == i.path.startswith("Celeb-synthesis/") for i in listed)


def test_celeb_layout_labels_and_no_test_leak(celeb_tree):
    root, listed, extra = celeb_tree
    assert detect_layout(root) == "celeb-df-v2"
    dataset = scan_dataset(root)
    labels = dataset.labels()
    assert len(labels) == 518 + len(extra)
    for item in listed:
        assert labels[item.path] == item.label
    assert labels[listed[0].path] == REAL  # the first line starts with "1": real
    assert all(labels[p] == FAKE for p in labels if p.startswith("Celeb-synthesis/"))
    assert all(labels[p] == REAL for p in labels if not p.startswith("Celeb-synthesis/"))

    split = make_split(dataset, seed=0)
    assert split.method == "official-test-list"
    assert set(split.test) == {i.path for i in listed}
    assert not set(split.test) & (set(split.train) | set(split.val))  # no leak
    assert set(split.train) | set(split.val) == set(extra)
    assert {labels[p] for p in split.val} == {REAL, FAKE}  # stratified validation slice
    assert dataset.missing_test == ()


def test_celeb_missing_and_contradicting_entries(celeb_tree):
    root, listed, _ = celeb_tree
    gone = listed[5].path
    (root / gone).unlink()
    dataset = scan_dataset(root, layout="celeb-df-v2")
    assert dataset.missing_test == (gone,) and gone not in make_split(dataset).test
    # a list that calls a Celeb-synthesis video real is refused, not silently trusted
    (root / "List_of_testing_videos.txt").write_text(f"1 {listed[-1].path}\n")
    with pytest.raises(ValueError, match="folder says otherwise"):
        scan_dataset(root)


def test_folders_layout_any_depth(tmp_path):
    for rel in ["set1/real/a/x.mp4", "set1/real/y.MOV", "set1/fake/b/c/z.webm", "set2/fake/w.mkv",
                "set2/fake/notes.txt", "set2/real/readme.md"]:
        _touch(tmp_path, rel)
    assert detect_layout(tmp_path) == "folders"
    dataset = scan_dataset(tmp_path)
    assert dataset.labels() == {"set1/real/a/x.mp4": REAL, "set1/real/y.MOV": REAL,
                                "set1/fake/b/c/z.webm": FAKE, "set2/fake/w.mkv": FAKE}
    with pytest.raises(ValueError, match="cannot tell the layout"):
        detect_layout(tmp_path / "set1" / "real" / "a")
