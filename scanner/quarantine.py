"""Damaged committed parts: moved out of the dataset by the run, reported by the readers.

A committed part that cannot be read (cut off by a crash of the disk, bit rot, a file system that lost
its tail) would fail every reader of the dataset, and every later `dfscan run`, night after night. So:

- the run, which holds OUT_DIR's lock, reads every part before it trusts the dataset, moves each one it
  cannot read into ``OUT_DIR/_quarantine/`` (a name starting with '_', which no reader of the dataset
  reads), records when and why in its manifest (``quarantined``), says so in one line on stderr, and
  scans the files whose rows were in it again, as if they were new;
- the readers (`dfscan report`, the web app) move nothing (they may run read-only): they read around
  a damaged part (``scanner.verdicts.read_parts``) and say which parts they skipped and which parts
  earlier runs moved to the quarantine.

Nothing is deleted: a part in the quarantine can be inspected, repaired, or put back by hand.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from dfscan.scanner import sink, verdicts

QUARANTINE_DIR = "_quarantine"
MANIFEST_KEY = "quarantined"  # a run's manifest lists the parts it moved under this key


def _folder(out_dir: Path) -> Path:
    """OUT_DIR/_quarantine, created when missing: a real folder (never a link), which others may not
    write while dfscan runs as root."""
    return sink.real_subfolder(out_dir, QUARANTINE_DIR, "moves damaged parts")


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name.1``, ``name.2``... when a part of that name was moved there before."""
    target, n = folder / name, 0
    while os.path.lexists(target):
        n += 1
        target = folder / f"{name}.{n}"
    return target


def quarantine_damaged(out_dir: str | Path, run_id: str) -> list[dict]:
    """Move every committed part of ``out_dir`` that cannot be read into ``_quarantine/``; called by
    the run under its lock. Returns one record per part moved, for the run's manifest:
    ``{"part", "moved_to", "at", "reason", "run_id"}``. A move that fails is ``sink.OutDirFailed``."""
    out_dir = Path(out_dir)
    damaged = verdicts.damaged_parts(out_dir)
    if not damaged:
        return []
    folder = _folder(out_dir)
    records = []
    for part in damaged:
        target = _free_name(folder, part.name)
        try:
            os.rename(out_dir / part.name, target)  # same folder tree: atomic, and a link is never followed
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise sink.OutDirFailed(f"cannot move the damaged part {part.name} out of the dataset "
                                    f"({part.reason}): {exc.strerror or exc}; move it away by hand") from None
        records.append({"part": part.name, "moved_to": f"{QUARANTINE_DIR}/{target.name}",
                        "at": dt.datetime.now(dt.timezone.utc).isoformat(), "reason": part.reason, "run_id": run_id})
    return records


def notice(record: dict, out_dir: str | Path) -> str:
    """The run's one line on stderr about a part it moved."""
    return (f"dfscan: the committed part {record['part']} cannot be read ({record['reason']}); moved it to "
            f"{Path(out_dir) / record['moved_to']} and its files are scanned again")


def quarantined(out_dir: str | Path) -> list[dict]:
    """The parts in ``out_dir/_quarantine/`` (read-only: for the readers), oldest move first, each
    with what the manifest of the run that moved it says (``at``, ``reason``, ``run_id``); a part whose
    run did not complete (or whose manifest cannot be read) has only ``part`` and ``moved_to``."""
    folder = Path(out_dir) / QUARANTINE_DIR
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.startswith("part-"))
    except OSError:
        return []
    recorded = {}
    for manifest in sink.read_manifests(out_dir).values():
        entries = manifest.get(MANIFEST_KEY)
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("moved_to"), str):
                recorded[entry["moved_to"]] = {k: str(entry.get(k)) for k in ("part", "moved_to", "at", "reason",
                                                                               "run_id") if entry.get(k) is not None}
    found = [recorded.get(f"{QUARANTINE_DIR}/{name}", {"part": name, "moved_to": f"{QUARANTINE_DIR}/{name}"})
             for name in names]
    return sorted(found, key=lambda r: (r.get("at", ""), r["moved_to"]))


def summary_lines(damaged: list[verdicts.DamagedPart], moved: list[dict], indent: str = "  ") -> list[str]:
    """What a reader says about damaged parts: those it skipped (still in the dataset) and those runs
    moved to the quarantine."""
    lines = []
    if damaged:
        lines.append(f"{indent}damaged parts skipped: {len(damaged)} (their rows are not counted; the next "
                     f"dfscan run moves them to {QUARANTINE_DIR}/ and scans their files again)")
        lines.extend(f"{indent}  {part.name}: {part.reason}" for part in damaged)
    if moved:
        lines.append(f"{indent}damaged parts moved to {QUARANTINE_DIR}/ by earlier runs: {len(moved)}")
        lines.extend(f"{indent}  {r['moved_to']}"
                     + (f" at {r['at']} by run {r.get('run_id', '?')}: {r.get('reason', '')}" if "at" in r
                        else " (no completed run recorded why)") for r in moved)
    return lines
