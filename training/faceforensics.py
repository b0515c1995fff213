"""FaceForensics++: its folder shape, its official train/val/test pairs, and the part each video is in.

    original_sequences/youtube/<compression>/videos/NNN.mp4          real
    original_sequences/actors/<compression>/videos/*.mp4             real (DeepFakeDetection's sources)
    manipulated_sequences/<method>/<compression>/videos/NNN_MMM.mp4  fake, made from the videos NNN and MMM
    manipulated_sequences/DeepFakeDetection/<compression>/videos/*   fake

The official splits (a copy ships in data/faceforensics_splits/) list pairs of 3-digit ids. The pair
[a, b] covers the real videos a and b and the fakes a_b and b_a; no id is in two parts, so no face is
in two parts. DeepFakeDetection and the actors' videos have no official split: they are left out
unless asked for (``include_dfd``), and then only ever join the training part.

This module knows names and parts; training.layouts turns them into labelled items.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from importlib import resources
from pathlib import Path

from dfscan.kernels.probe import VIDEO_EXTENSIONS

METHODS: tuple[str, ...] = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
DFD = "DeepFakeDetection"
COMPRESSIONS: tuple[str, ...] = ("raw", "c23", "c40")
PARTS: tuple[str, ...] = ("train", "val", "test")
REAL_DIR, FAKE_DIR = "original_sequences", "manipulated_sequences"
_REAL_NAME = re.compile(r"\d{3}")
_FAKE_NAME = re.compile(r"(\d{3})_(\d{3})")
_SUFFIXES = frozenset("." + extension for extension in VIDEO_EXTENSIONS)


@dataclasses.dataclass(frozen=True)
class FFOptions:
    """Which FaceForensics++ videos to use: one compression, some methods, and DeepFakeDetection or not."""

    compression: str = "c23"
    methods: tuple[str, ...] = METHODS  # used where present on disk
    include_dfd: bool = False  # DeepFakeDetection fakes and the actors' reals, in the training part only

    def __post_init__(self):
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {self.compression!r}; expected one of {', '.join(COMPRESSIONS)}")
        unknown = [m for m in self.methods if m not in (*METHODS, DFD)]
        if unknown or not self.methods:
            raise ValueError(f"{'unknown method ' + ', '.join(unknown) if unknown else 'no method given'}; expected "
                             f"a comma list of {', '.join((*METHODS, DFD))}")
        if DFD in self.methods and not self.include_dfd:
            raise ValueError(f"{DFD} has no official split: add --include-dfd to train on it (training part only)")

    @classmethod
    def parse(cls, compression: str = "c23", methods: str | None = None, include_dfd: bool = False) -> FFOptions:
        """From the command line: ``methods`` is a comma list (None: the five FF++ methods)."""
        if methods is not None:  # spaces and repeats dropped
            return cls(compression, tuple(dict.fromkeys(m.strip() for m in methods.split(",") if m.strip())),
                       include_dfd)
        return cls(compression=compression, include_dfd=include_dfd)


@functools.lru_cache(maxsize=1)
def official_pairs() -> dict[str, tuple[tuple[str, str], ...]]:
    """The official pairs per part, from the copy shipped with the package."""
    folder = resources.files(__package__) / "data" / "faceforensics_splits"
    parts = {}
    for part in PARTS:
        pairs = json.loads((folder / f"{part}.json").read_text())
        parts[part] = tuple((str(a), str(b)) for a, b in pairs)
    return parts


def part_of_ids() -> dict[str, str]:
    """Each official id's part ("train", "val" or "test")."""
    return {video_id: part for part, pairs in official_pairs().items() for pair in pairs for video_id in pair}


def looks_like(root: Path) -> bool:
    return (root / REAL_DIR).is_dir() or (root / FAKE_DIR).is_dir()


def _videos(root: Path, folder: Path) -> list[tuple[str, str]]:
    """(path relative to root, file stem) of the videos directly in ``folder``, sorted."""
    if not folder.is_dir():
        return []
    return sorted((p.relative_to(root).as_posix(), p.stem) for p in folder.iterdir()
                  if p.suffix.lower() in _SUFFIXES and p.is_file())


def _compressions_on_disk(root: Path) -> list[str]:
    found = {p.parent.name for p in root.glob(f"{REAL_DIR}/*/*/videos")}
    found |= {p.parent.name for p in root.glob(f"{FAKE_DIR}/*/*/videos")}
    return sorted(found)


@dataclasses.dataclass(frozen=True)
class FFScan:
    videos: tuple[tuple[str, bool, str], ...]  # (path, is_fake, part), part "train" | "val" | "test"
    methods: tuple[str, ...]  # the chosen methods found on disk
    notes: tuple[str, ...]  # what was used and what was left out, in plain words


def scan(root: str | Path, options: FFOptions = FFOptions()) -> FFScan:
    """Every chosen video under ``root`` with its official part. Reals NNN take their id's part and
    fakes NNN_MMM their pair's part; a name that is not an official id or pair is left out."""
    root = Path(root)
    compression = options.compression
    id_part = part_of_ids()
    pair_part = {frozenset(pair): part for part, pairs in official_pairs().items() for pair in pairs}
    videos: list[tuple[str, bool, str]] = []
    unofficial: list[str] = []
    for rel, stem in _videos(root, root / REAL_DIR / "youtube" / compression / "videos"):
        part = id_part.get(stem) if _REAL_NAME.fullmatch(stem) else None
        if part:
            videos.append((rel, False, part))
        else:
            unofficial.append(rel)
    present, absent = [], []
    for method in (m for m in dict.fromkeys(options.methods) if m != DFD):
        folder = root / FAKE_DIR / method / compression / "videos"
        (present if folder.is_dir() else absent).append(method)
        for rel, stem in _videos(root, folder):
            match = _FAKE_NAME.fullmatch(stem)
            part = pair_part.get(frozenset(match.groups())) if match else None
            if part:
                videos.append((rel, True, part))
            else:
                unofficial.append(rel)
    unsplit = ([(rel, False) for rel, _ in _videos(root, root / REAL_DIR / "actors" / compression / "videos")]
               + [(rel, True) for rel, _ in _videos(root, root / FAKE_DIR / DFD / compression / "videos")])
    if not videos and not (unsplit and options.include_dfd):
        found = _compressions_on_disk(root)
        raise ValueError(f"no FaceForensics++ videos of {', '.join(options.methods)} or originals at compression "
                         f"{compression} under {root} (compressions found: {', '.join(found) or 'none'}; see "
                         f"--compression and --methods)")

    counts = {part: sum(p == part for _, _, p in videos) for part in PARTS}
    n_fake = sum(fake for _, fake, _ in videos)
    notes = [f"FaceForensics++ {compression}: {len(videos) - n_fake} real and {n_fake} fake videos "
             f"({', '.join(present) or 'no method found'}) in the official splits: train {counts['train']}, "
             f"val {counts['val']}, test {counts['test']}"]
    if absent:
        notes.append(f"FaceForensics++: no {compression} videos of {', '.join(absent)} (left out)")
    if unofficial:
        notes.append(f"FaceForensics++: {len(unofficial)} videos whose names are not an official id or pair "
                     f"were left out (e.g. {unofficial[0]})")
    if unsplit and options.include_dfd:
        videos += [(rel, fake, "train") for rel, fake in unsplit]
        present.append(DFD)
        notes.append(f"FaceForensics++: {len(unsplit)} {DFD} and actors videos (no official split) were added "
                     f"to the training part only")
    elif unsplit:
        notes.append(f"FaceForensics++: {len(unsplit)} {DFD} and actors videos have no official split and were "
                     f"left out of train, val and test (--include-dfd adds them to training only)")
    return FFScan(videos=tuple(videos), methods=tuple(present), notes=tuple(notes))
