"""Datasets for training: layouts, splits, class-balanced batches and augmentation.

Videos are read only through ``kernels.clips.ClipReader``, the scanner's own pipeline, so a model is
trained on exactly the frames (sampling, decoder, resize) it will see when it scans.

Layouts:
- ``folders``: videos anywhere below folders named ``real`` and ``fake`` (case-insensitive).
- ``celeb-df-v2``: ``Celeb-real/`` and ``YouTube-real/`` are real, ``Celeb-synthesis/`` is fake, and
  ``List_of_testing_videos.txt`` lists the official test set as ``<label> <relative path>`` with
  **1 = real and 0 = fake** (the opposite of our class indices, where fake = 1).

Labels are class indices into ``CLASS_NAMES`` = ("real", "fake"): 0 = real, 1 = fake.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kernels.atomic import atomic_write_bytes
from kernels.clips import ClipReader
from kernels.errors import VideoError
from kernels.probe import VIDEO_EXTENSIONS

LAYOUTS: tuple[str, ...] = ("folders", "celeb-df-v2")
_VIDEO_SUFFIXES = frozenset("." + extension for extension in VIDEO_EXTENSIONS)
REAL, FAKE = 0, 1
CELEB_TEST_LIST = "List_of_testing_videos.txt"
CELEB_FOLDERS: dict[str, int] = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}


@dataclasses.dataclass(frozen=True)
class VideoItem:
    path: str  # relative to the dataset root, forward slashes
    label: int  # 0 = real, 1 = fake


@dataclasses.dataclass(frozen=True)
class Dataset:
    root: str
    layout: str
    items: tuple[VideoItem, ...]
    official_test: tuple[str, ...] | None = None  # celeb-df-v2: the test list entries found on disk
    missing_test: tuple[str, ...] = ()  # test list entries with no file under root

    def labels(self) -> dict[str, int]:
        return {item.path: item.label for item in self.items}


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in _VIDEO_SUFFIXES and path.is_file()


def _videos_under(folder: Path, root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in folder.rglob("*") if _is_video(p))


def detect_layout(root: str | os.PathLike) -> str:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if (root / CELEB_TEST_LIST).is_file() or any((root / name).is_dir() for name in CELEB_FOLDERS):
        return "celeb-df-v2"
    if any(p.is_dir() and p.name.lower() in ("real", "fake") for p in root.rglob("*")):
        return "folders"
    raise ValueError(f"cannot tell the layout of {root}: expected real/ and fake/ folders, or the "
                     f"Celeb-DF v2 folders ({', '.join(CELEB_FOLDERS)}) and {CELEB_TEST_LIST}")


def read_celeb_test_list(path: str | os.PathLike) -> list[VideoItem]:
    """Parse ``List_of_testing_videos.txt``: ``1`` means real and ``0`` means fake."""
    items = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        flag, _, rel = line.strip().partition(" ")
        if flag not in ("0", "1") or not rel.strip():
            raise ValueError(f"{path}:{number}: expected '<0|1> <relative path>', got {line!r}")
        items.append(VideoItem(path=rel.strip(), label=REAL if flag == "1" else FAKE))
    return items


def _scan_folders(root: Path) -> list[VideoItem]:
    items: dict[str, VideoItem] = {}
    for rel in _videos_under(root, root):
        # The nearest enclosing real/ or fake/ folder decides, so nested trees keep their labels.
        parts = [p.lower() for p in Path(rel).parts[:-1]]
        for part in reversed(parts):
            if part in ("real", "fake"):
                items[rel] = VideoItem(rel, REAL if part == "real" else FAKE)
                break
    return list(items.values())


def scan_dataset(root: str | os.PathLike, layout: str = "auto") -> Dataset:
    """Every labelled video under ``root`` (sorted by path, so splits do not depend on listing order)."""
    root = Path(root)
    layout = detect_layout(root) if layout == "auto" else layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected auto or one of {', '.join(LAYOUTS)}")
    if layout == "folders":
        items = _scan_folders(root)
        official, missing = None, ()
    else:
        items = [VideoItem(rel, label) for folder, label in CELEB_FOLDERS.items()
                 for rel in _videos_under(root / folder, root)]
        listed = read_celeb_test_list(root / CELEB_TEST_LIST) if (root / CELEB_TEST_LIST).is_file() else None
        official, missing = None, ()
        if listed is not None:
            on_disk = {item.path: item.label for item in items}
            for entry in listed:
                if entry.path in on_disk and on_disk[entry.path] != entry.label:
                    raise ValueError(f"{CELEB_TEST_LIST} labels {entry.path} as "
                                     f"{'real' if entry.label == REAL else 'fake'}, its folder says otherwise")
            official = tuple(e.path for e in listed if e.path in on_disk)
            missing = tuple(e.path for e in listed if e.path not in on_disk)
    if not items:
        raise ValueError(f"no labelled videos found under {root} (layout {layout})")
    return Dataset(root=str(root), layout=layout, items=tuple(sorted(items, key=lambda i: i.path)),
                   official_test=official, missing_test=missing)


@dataclasses.dataclass(frozen=True)
class Split:
    method: str  # "official-test-list" | "stratified"
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


def make_split(dataset: Dataset, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1) -> Split:
    """The official test list where the layout has one, otherwise a stratified 80/20 split; then a
    stratified validation slice of the training part. The same seed gives the same split."""
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
            "official_test_missing": len(dataset.missing_test)}


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation. Photometric jitter is drawn once per clip and applied to every
    frame alike: per-frame jitter would imitate the flicker that betrays a face swap."""

    flip: bool = True
    brightness: float = 0.08  # max shift, as a fraction of 255
    contrast: float = 0.15  # max relative change around the clip's mean
    max_offset: int = 2  # temporal jitter of the sampled indices, in frames, either way


def augment_clip(frames: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Flip and brightness/contrast jitter of one clip.  # (F, S, S, 3) uint8 -> same"""
    out = frames.astype(np.float32)
    if config.flip and rng.random() < 0.5:
        out = out[:, :, ::-1]
    if config.contrast:
        mean = out.mean()
        out = (out - mean) * (1.0 + rng.uniform(-config.contrast, config.contrast)) + mean
    if config.brightness:
        out = out + 255.0 * rng.uniform(-config.brightness, config.brightness)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _host(frames) -> np.ndarray:
    """Clip frames in host memory (dali-gpu leaves them on the GPU)."""
    if isinstance(frames, np.ndarray):
        return frames
    import keras

    return np.asarray(keras.ops.convert_to_numpy(frames))


class ClipSource:
    """Decoded clips by (path, temporal offset), read through ``ClipReader`` and cached in memory.

    The training sets this is meant for are small; above ``max_cache_bytes`` clips are re-read each
    time instead of cached. Offsets are drawn from a few values, so temporal jitter costs at most
    2 * max_offset + 1 decodes per video over a whole run, not one per epoch.
    """

    def __init__(self, reader: ClipReader, root: str | os.PathLike, max_cache_bytes: int = 2 << 30):
        self.reader = reader
        self.root = Path(root)
        self.max_cache_bytes = max_cache_bytes
        self.errors: dict[str, VideoError] = {}  # relative path -> why it could not be read
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self._cached_bytes = 0

    def get(self, paths: Sequence[str], offsets: Sequence[int] | None = None) -> list[np.ndarray | None]:
        """Clips (F, S, S, 3) uint8 for relative ``paths``; None where a file cannot be read."""
        offsets = [0] * len(paths) if offsets is None else [int(o) for o in offsets]
        keys = list(zip(paths, offsets))
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache and k[0] not in self.errors]
        fresh: dict[tuple[str, int], np.ndarray] = {}
        shifted_failed: set[tuple[str, int]] = set()
        if todo:
            clips = self.reader.read([str(self.root / p) for p, _ in todo], offsets=[o for _, o in todo])
            for key, clip in zip(todo, clips):
                if clip.error is not None or clip.frames is None:
                    if key[1] == 0:
                        self.errors[key[0]] = clip.error
                    else:  # a shifted plan that fails falls back to the plain one below
                        shifted_failed.add(key)
                    continue
                frames = _host(clip.frames)  # (F, S, S, 3) uint8
                fresh[key] = frames
                if self._cached_bytes + frames.nbytes <= self.max_cache_bytes:
                    self._cache[key] = frames
                    self._cached_bytes += frames.nbytes
        out = []
        for key in keys:
            if key[0] in self.errors:
                out.append(None)
            elif key in shifted_failed:
                out.append(self.get([key[0]])[0])
            else:
                out.append(self._cache.get(key, fresh.get(key)))
        return out

    def readable(self, items: Sequence[VideoItem], chunk: int = 32) -> list[VideoItem]:
        """The items that decode (reading them once, which also fills the cache)."""
        for start in range(0, len(items), chunk):
            self.get([i.path for i in items[start:start + chunk]])
        return [i for i in items if i.path not in self.errors]


def balanced_indices(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One batch of row numbers, half real and half fake (the odd one drawn from either class).

    Celeb-DF is about 10 % real, so uniform batches would teach "always fake"; this draws both
    classes equally, sampling the minority with replacement.  # (batch_size,) int64
    """
    by_class = [np.flatnonzero(labels == c) for c in (REAL, FAKE)]
    if any(len(rows) == 0 for rows in by_class):
        return rng.choice(len(labels), size=batch_size, replace=len(labels) < batch_size)
    n_real = batch_size // 2 + int(batch_size % 2 and rng.random() < 0.5)
    parts = []
    for rows, n in zip(by_class, (n_real, batch_size - n_real)):
        parts.append(rng.choice(rows, size=n, replace=len(rows) < n))
    return rng.permutation(np.concatenate(parts))


class ClipBatches:
    """Batches of (clips (B, F, S, S, 3) uint8, one-hot labels (B, 2) float32).

    Training (``balanced``): class-balanced draws and, with ``augment``, flips, photometric jitter
    and temporal offsets, all seeded by (seed, epoch, step) so a run is reproducible. Evaluation:
    every item once, in order, unaugmented; the last batch may be short.
    """

    def __init__(self, source: ClipSource, items: Sequence[VideoItem], batch_size: int, *,
                 balanced: bool = False, augment: AugmentConfig | None = None, seed: int = 0,
                 steps: int | None = None):
        self.source = source
        self.items = list(items)
        self.labels = np.array([i.label for i in self.items], dtype=np.int64)
        self.batch_size = batch_size
        self.balanced = balanced
        self.augment = augment if balanced else None  # never augment evaluation batches
        self.seed = seed
        self.epoch = 0
        natural = max(1, -(-len(self.items) // batch_size))
        self.steps = (steps or natural) if balanced else natural

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        offsets = None
        if not self.balanced:
            rows = np.arange(step * self.batch_size, min(len(self.items), (step + 1) * self.batch_size))
        else:
            rng = np.random.default_rng([self.seed, self.epoch, step])
            rows = balanced_indices(self.labels, self.batch_size, rng)
            if self.augment is not None and self.augment.max_offset:
                k = self.augment.max_offset
                offsets = rng.integers(-k, k + 1, size=len(rows))
        clips = self.source.get([self.items[r].path for r in rows], offsets)
        unreadable = [self.items[r].path for c, r in zip(clips, rows) if c is None]
        if unreadable:
            raise RuntimeError(f"cannot read {unreadable[0]} ({self.source.errors.get(unreadable[0])}); "
                               "keep only ClipSource.readable() items")
        x = np.stack(clips)  # (B, F, S, S, 3) uint8
        if self.augment is not None:
            x = np.stack([augment_clip(clip, rng, self.augment) for clip in x])
        y = np.eye(2, dtype=np.float32)[self.labels[rows]]  # (B, 2) one-hot over [real, fake]
        return x, y
