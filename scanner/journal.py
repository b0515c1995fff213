"""The compaction journal: what `dfscan compact` (scanner.compact) commits to, and the view of OUT_DIR's parts
it gives readers while a compaction is unfinished, so that no reader ever counts a row twice or misses one.

    _compact/<id>/part-<id>-<seq>.parquet   compacted parts being written (a '_' folder: no reader lists it)
    _compact/<id>.json                      the journal: the parts it replaces and the parts it adds, with
                                            their rows; its atomic write is the compaction's commit point
    _compact/<id>.done                      written once the new parts are in place and the old ones gone;
                                            the journal stays as the record of the compaction

A journal without ``.done`` is an unfinished compaction. Readers take its outcome as already done (the
parts it replaces are left out, the parts it adds read from wherever they are now); the next compaction or
run finishes it under the OUT_DIR lock. Staged parts without a journal are a compaction killed before its
commit point, so the old parts are still the data: they are rolled back.

Readers take no lock: one that lists the parts in the milliseconds while a live compaction renames and
deletes them may find a listed part gone (FileNotFoundError) and should read again; it never reads a row
twice from a finished or killed compaction.

This module reads only; it knows nothing of the row (no import of scanner.verdicts), so the verdict reader
can take its view.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

COMPACT_DIR = "_compact"
MAX_JOURNAL_BYTES = 64 << 20
PART_NAME = re.compile(r"part-[0-9A-Za-z_.-]+\.parquet")  # a bare part name: no folder, never '..'
JOURNAL_NAME = re.compile(r"(\d{8}T\d{6}Z-[0-9a-f]{8})\.json")  # scanner.sink.RUN_ID_PATTERN


class JournalError(ValueError):
    """A compaction journal that cannot be read or names something other than parts. Nothing is read or
    changed while it stands: the folder's rows could be counted twice."""


@dataclasses.dataclass(frozen=True)
class Journal:
    id: str
    replaces: tuple[str, ...]  # the old parts, in read order
    parts: tuple[str, ...]  # the new parts, in read order
    rows: int  # in the old parts, and so in the new ones
    done: bool  # the new parts are in place and the old ones deleted

    def staged(self, out_dir: Path) -> Path:
        return Path(out_dir) / COMPACT_DIR / self.id


def journal_path(out_dir: str | Path, compaction_id: str, suffix: str = ".json") -> Path:
    return Path(out_dir) / COMPACT_DIR / f"{compaction_id}{suffix}"


def journal_ids(out_dir: str | Path) -> list[str]:
    """The ids of every committed compaction in OUT_DIR, finished or not, oldest first (names only)."""
    folder = Path(out_dir) / COMPACT_DIR
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(match.group(1) for match in map(JOURNAL_NAME.fullmatch, (p.name for p in folder.glob("*.json")))
                  if match is not None)


def read_journals(out_dir: str | Path, unfinished_only: bool = False) -> list[Journal]:
    """The compactions' journals in OUT_DIR, oldest first; with ``unfinished_only`` only those without
    ``.done`` are read (the records of finished ones are never parsed then). Raises JournalError."""
    journals = []
    for compaction_id in journal_ids(out_dir):
        path = journal_path(out_dir, compaction_id)
        done = journal_path(out_dir, compaction_id, ".done").exists()
        if done and unfinished_only:
            continue
        try:
            if path.is_symlink() or path.stat().st_size > MAX_JOURNAL_BYTES:
                raise ValueError("not a journal dfscan wrote")
            data = json.loads(path.read_bytes())
            replaces, parts = tuple(data["replaces"]), tuple(p["name"] for p in data["parts"])
            rows = int(data["rows"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"cannot read the compaction journal {path}: {exc}; move it away only if "
                               f"{out_dir} has no part-{compaction_id}-*.parquet") from None
        if not all(isinstance(name, str) and PART_NAME.fullmatch(name) for name in replaces + parts):
            raise JournalError(f"the compaction journal {path} names files that are no parts")
        journals.append(Journal(id=compaction_id, replaces=replaces, parts=parts, rows=rows, done=done))
    return journals


def visible_parts(out_dir: str | Path, listed: list[Path]) -> list[Path]:
    """The parts a reader reads: ``listed`` (OUT_DIR's committed parts), with every unfinished compaction
    taken as finished. Sorted by name: the read order."""
    unfinished = read_journals(out_dir, unfinished_only=True)
    if not unfinished:
        return listed
    by_name = {path.name: path for path in listed}
    for journal in unfinished:
        for name in journal.replaces:
            by_name.pop(name, None)
        for name in journal.parts:
            staged = journal.staged(out_dir) / name
            if name not in by_name and staged.is_file() and not staged.is_symlink():
                by_name[name] = staged
    return [by_name[name] for name in sorted(by_name)]
