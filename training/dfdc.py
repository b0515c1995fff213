"""DFDC, the Deepfake Detection Challenge's training set: parts, each with its own metadata.json.

    dfdc_train_part_N/metadata.json   {"<name>.mp4": {"label": "REAL" | "FAKE", "original": "<name>.mp4", ...}}
    dfdc_train_part_N/<name>.mp4

(or a single part: metadata.json at the dataset root). A fake's "original" names the real video it was
made from; each video is grouped with its original (a real video is its own), so a split of groups
(training.splits) never puts a fake and its source in different parts. The metadata's own "split"
field says "train" everywhere and is not used.

This module knows names, labels and groups; training.layouts turns them into labelled items.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dfscan.kernels.probe import VIDEO_EXTENSIONS

PART_GLOB = "dfdc_train_part_*"
METADATA = "metadata.json"
_SUFFIXES = frozenset("." + extension for extension in VIDEO_EXTENSIONS)


def metadata_files(root: Path) -> list[Path]:
    """Every part's metadata.json, sorted; the root's own when the root is one part."""
    files = sorted(p for p in root.glob(f"{PART_GLOB}/{METADATA}") if p.is_file())
    return files + ([root / METADATA] if (root / METADATA).is_file() else [])


def has_parts(root: Path) -> bool:
    return any(p.is_file() for p in root.glob(f"{PART_GLOB}/{METADATA}"))


def _malformed(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path}: malformed {METADATA}: {reason}")


def read_metadata(path: str | Path) -> dict[str, tuple[bool, str]]:
    """``{file name: (is_fake, group)}``; the group is a fake's original, a real video's own name.

    Raises ValueError, one line naming the file, when it is not DFDC's metadata."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(path, f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _malformed(path, f"expected an object of file name: entry, got a {type(data).__name__}")
    entries = {}
    for name, entry in data.items():
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise _malformed(path, f"{name!r} is not a file name")
        label = entry.get("label") if isinstance(entry, dict) else None
        if label not in ("REAL", "FAKE"):
            raise _malformed(path, f"{name!r} has no label REAL or FAKE")
        original = entry.get("original")
        if label == "FAKE" and not (isinstance(original, str) and original):
            raise _malformed(path, f"the fake {name!r} names no original")
        entries[name] = (label == "FAKE", original if label == "FAKE" else name)
    return entries


@dataclasses.dataclass(frozen=True)
class DFDCScan:
    videos: tuple[tuple[str, bool, str], ...]  # (path relative to the root, is_fake, group)
    notes: tuple[str, ...]  # what was used and what was left out, in plain words


def scan(root: str | Path) -> DFDCScan:
    """Every video a metadata.json labels and that is on disk, with its group."""
    root = Path(root)
    files = metadata_files(root)
    videos: list[tuple[str, bool, str]] = []
    missing: list[str] = []
    unlisted: list[str] = []
    for metadata in files:
        folder = metadata.parent
        prefix = "" if folder == root else folder.relative_to(root).as_posix() + "/"
        entries = read_metadata(metadata)
        for name, (fake, group) in sorted(entries.items()):
            if (folder / name).is_file():
                videos.append((prefix + name, fake, group))
            else:
                missing.append(prefix + name)
        unlisted += sorted(prefix + p.name for p in folder.iterdir()
                           if p.suffix.lower() in _SUFFIXES and p.name not in entries and p.is_file())
    n_fake = sum(fake for _, fake, _ in videos)
    groups = len({group for _, _, group in videos})
    notes = [f"DFDC: {len(videos) - n_fake} real and {n_fake} fake videos in {len(files)} parts, {groups} groups "
             f"(a real video and the fakes made from it) that no split divides; training draws class-balanced "
             f"batches"]
    if missing:
        notes.append(f"DFDC: {len(missing)} videos listed in {METADATA} are not on disk (left out, e.g. {missing[0]})")
    if unlisted:
        notes.append(f"DFDC: {len(unlisted)} videos are in no {METADATA} (left out, unlabelled, e.g. {unlisted[0]})")
    return DFDCScan(videos=tuple(videos), notes=tuple(notes))
