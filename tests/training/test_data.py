"""Layouts, the Celeb-DF v2 test list (1 = real, 0 = fake), splits, balanced batches, augmentation,
and that every video is read through kernels.clips.ClipReader."""

import os
from pathlib import Path

import numpy as np
import pytest

from kernels.clips import ClipReader, ClipSpec
from training.data import (
    FAKE,
    REAL,
    AugmentConfig,
    ClipBatches,
    ClipSource,
    balanced_indices,
    detect_layout,
    load_split,
    make_split,
    read_celeb_test_list,
    save_split,
    scan_dataset,
)
from training.synth import SynthConfig, synth

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


def test_balanced_batches_with_ten_percent_real():
    labels = np.array([REAL] * 10 + [FAKE] * 90)
    rng = np.random.default_rng(0)
    for _ in range(50):
        rows = balanced_indices(labels, 16, rng)
        assert (labels[rows] == REAL).sum() == 8


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    synth(root, SynthConfig(videos=6, frames_per_video=12, width=64, height=64, seed=4))
    return root


def test_batches_read_through_kernels_and_augment_only_training(small_archive, monkeypatch):
    calls = []
    original = ClipReader.read

    def counting(self, paths, offsets=None):
        calls.append((list(paths), None if offsets is None else [int(o) for o in offsets]))
        return original(self, paths, offsets)

    monkeypatch.setattr(ClipReader, "read", counting)
    dataset = scan_dataset(small_archive)
    source = ClipSource(ClipReader(ClipSpec(frames=4, size=32, decoder="pyav")), small_archive)
    items = source.readable(list(dataset.items))
    assert len(items) == 6 and len(calls) == 1 and calls[0][1] == [0] * 6

    plain = np.stack(source.get([i.path for i in items]))  # (6, F, S, S, 3) uint8
    x, y = ClipBatches(source, items, 6)[0]
    assert x.dtype == np.uint8 and x.shape == (6, 4, 32, 32, 3)
    np.testing.assert_array_equal(x, plain)  # evaluation batches are never augmented
    np.testing.assert_array_equal(y.argmax(1), [i.label for i in items])
    assert len(calls) == 1  # served from the cache

    train = ClipBatches(source, items, 6, balanced=True, augment=AugmentConfig(max_offset=2), seed=1)
    xs = [train[step][0] for step in range(4)]
    assert any(len(c) and c[1] is not None and any(c[1]) for c in calls[1:])  # temporal jitter via kernels
    assert all(all(abs(o) <= 2 for o in c[1]) for c in calls[1:] if c[1] is not None)
    assert not any(np.array_equal(batch, plain) for batch in xs)
    train.on_epoch_end()
    np.testing.assert_array_equal(train[0][1].sum(0), [3, 3])  # balanced: 3 real, 3 fake
    # seeded by (seed, epoch, step): the same batch comes back for the same coordinates
    again = ClipBatches(source, items, 6, balanced=True, augment=AugmentConfig(max_offset=2), seed=1)
    np.testing.assert_array_equal(again[2][0], xs[2])


def test_augment_clip_flip_and_jitter_are_per_clip():
    from training.data import augment_clip

    rng = np.random.default_rng(0)
    clip = np.tile(np.arange(32, dtype=np.uint8)[None, None, :, None] * 4, (3, 32, 1, 3))  # (3, 32, 32, 3)
    flipped = augment_clip(clip, rng, AugmentConfig(flip=True, brightness=0, contrast=0))
    while np.array_equal(flipped, clip):  # flips with probability 1/2
        flipped = augment_clip(clip, rng, AugmentConfig(flip=True, brightness=0, contrast=0))
    np.testing.assert_array_equal(flipped, clip[:, :, ::-1])
    jittered = augment_clip(clip, rng, AugmentConfig(flip=False, brightness=0.1, contrast=0.1))
    shift = jittered.astype(int) - clip.astype(int)
    # one brightness/contrast change for the whole clip: every frame moves alike (no added flicker)
    assert np.array_equal(shift[0], shift[1]) and np.array_equal(shift[1], shift[2])
