"""Dataset layouts: finding the labelled videos under a dataset folder.

Layouts:
- ``folders``: videos anywhere below folders named ``real`` and ``fake`` (case-insensitive).
- ``celeb-df-v2``: ``Celeb-real/`` and ``YouTube-real/`` are real, ``Celeb-synthesis/`` is fake, and
  ``List_of_testing_videos.txt`` lists the official test set as ``<label> <relative path>`` with
  **1 = real and 0 = fake** (the opposite of our class indices, where fake = 1).
- ``faceforensics``: FaceForensics++ at one compression, with its official train/val/test splits
  (training/faceforensics.py).
- ``dfdc``: DFDC's ``dfdc_train_part_*/metadata.json``; each video is grouped with its original, so no
  split divides a fake from its source (training/dfdc.py).

Labels are class indices into ``CLASS_NAMES`` = ("real", "fake"): 0 = real, 1 = fake.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dfscan.kernels.probe import VIDEO_EXTENSIONS
from dfscan.kernels.scope import SYNTHETIC_MARKER
from dfscan.training import dfdc, faceforensics
from dfscan.training.faceforensics import FFOptions

LAYOUTS: tuple[str, ...] = ("folders", "celeb-df-v2", "faceforensics", "dfdc")
_VIDEO_SUFFIXES = frozenset("." + extension for extension in VIDEO_EXTENSIONS)
REAL, FAKE = 0, 1
CELEB_TEST_LIST = "List_of_testing_videos.txt"
CELEB_FOLDERS: dict[str, int] = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}


@dataclasses.dataclass(frozen=True)
class VideoItem:
    path: str  # relative to the dataset root, forward slashes
    label: int  # 0 = real, 1 = fake
    group: str | None = None  # videos of one group are never split apart (DFDC: a fake's original video)


@dataclasses.dataclass(frozen=True)
class Dataset:
    root: str
    layout: str
    items: tuple[VideoItem, ...]
    official_test: tuple[str, ...] | None = None  # celeb-df-v2: the test list entries found on disk;
    # faceforensics: the official test part
    official_val: tuple[str, ...] | None = None  # faceforensics: the official validation part
    missing_test: tuple[str, ...] = ()  # test list entries with no file under root
    synthetic: bool = False  # written by `dfscan synth` (SYNTHETIC_MARKER at its root)
    notes: tuple[str, ...] = ()  # what the layout used and left out, in plain words (shown and carded)
    selection: dict = dataclasses.field(default_factory=dict, hash=False)  # faceforensics: compression, methods

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
    if faceforensics.looks_like(root):
        return "faceforensics"
    if dfdc.has_parts(root):
        return "dfdc"
    if any(p.is_dir() and p.name.lower() in ("real", "fake") for p in root.rglob("*")):
        return "folders"
    if dfdc.metadata_files(root):  # one DFDC part as the root (a real/fake tree with a metadata.json stays folders)
        return "dfdc"
    raise ValueError(f"cannot tell the layout of {root}: expected real/ and fake/ folders, the Celeb-DF v2 "
                     f"folders ({', '.join(CELEB_FOLDERS)}), FaceForensics++'s {faceforensics.REAL_DIR}/ and "
                     f"{faceforensics.FAKE_DIR}/, or DFDC's {dfdc.PART_GLOB}/{dfdc.METADATA}")


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


# `dfscan synth` leaves this file at the root of what it writes, so a model card can say that its model
# never saw a real deepfake.


def scan_dataset(root: str | os.PathLike, layout: str = "auto", ff_options: FFOptions = FFOptions()) -> Dataset:
    """Every labelled video under ``root`` (sorted by path, so splits do not depend on listing order).
    ``ff_options`` choose FaceForensics++'s compression and methods (other layouts ignore them)."""
    root = Path(root)
    layout = detect_layout(root) if layout == "auto" else layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected auto or one of {', '.join(LAYOUTS)}")
    official_val, notes, selection = None, (), {}
    if layout == "faceforensics":
        found = faceforensics.scan(root, ff_options)
        items = [VideoItem(rel, FAKE if fake else REAL) for rel, fake, _ in found.videos]
        official, official_val = (tuple(sorted(rel for rel, _, part in found.videos if part == name))
                                  for name in ("test", "val"))
        missing, notes = (), found.notes
        selection = {"compression": ff_options.compression, "methods": list(found.methods),
                     "include_dfd": ff_options.include_dfd}
    elif layout == "dfdc":
        found = dfdc.scan(root)
        items = [VideoItem(rel, FAKE if fake else REAL, group) for rel, fake, group in found.videos]
        official, missing, notes = None, (), found.notes
    elif layout == "folders":
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
                   official_test=official, missing_test=missing, synthetic=(root / SYNTHETIC_MARKER).is_file(),
                   official_val=official_val, notes=notes, selection=selection)
