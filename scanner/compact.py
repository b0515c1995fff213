"""`dfscan compact OUT_DIR` (and `dfscan run --compact-after N`): rewrite the many small parts that nightly
runs commit into few large ones, with the same rows in the same read order and the current schema.

Every night adds parts; after a year a verdict folder of thousands of small files makes every Parquet
reader slow. A compaction keeps the leading parts that are already large (earlier compactions) and
rewrites all the parts after them, in name order, into parts of at most ``rows_per_part`` rows named
``part-<id>-<seq>.parquet``, where ``<id>`` is a new run id: it sorts after every part it replaces and
before every later run's, so reading in name order reads the rows in the order they were read before.
``verdicts.newest_rows`` breaks ties of ``scanned_at`` by that order.

Killed at any point, no row is lost or counted twice (scanner.journal has the layout):
1. the new parts are written under ``_compact/<id>/`` (readers never list it) and flushed;
2. the journal ``_compact/<id>.json``, naming the parts replaced and the parts added, is written
   atomically: the commit point;
3. the new parts are renamed into OUT_DIR, 4. the old parts deleted, 5. ``_compact/<id>.done`` written.
Before 2 the old parts are the data and the staged files are deleted by the next compaction or run
(rollback); from 2 on readers read the journal's outcome, and the next compaction or run completes it
(roll forward). Compaction holds the OUT_DIR lock, so it never runs beside a scan writing the folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from dfscan.kernels.atomic import atomic_file, atomic_write_bytes
from dfscan.scanner import journal, sink, verdicts

ROWS_PER_PART = 1_000_000  # a compacted part's rows at most: tens of MB of Parquet
ROW_GROUP_ROWS = 64 * 1024  # rows read, held and written at once
# The steps of a compaction, in order; tests stop a compaction after each (``on_step``).
STEPS = ("staged", "journal", "renamed", "deleted", "done")


class CompactError(RuntimeError):
    """A compaction that cannot be done (a part of a newer release, a clock behind the parts' run ids,
    a failed write). Committed parts are untouched unless the journal was written, and then the next
    compaction or run completes it."""


@dataclasses.dataclass
class CompactResult:
    out: str
    parts_before: int
    parts_after: int
    rows: int  # in the parts rewritten
    rewritten: int  # parts replaced
    new_parts: list[str]
    seconds: float
    recovered: list[str]  # interrupted compactions completed first (their ids)

    def line(self) -> str:
        if not self.rewritten:
            return f"{self.out}: {_parts(self.parts_before)}, nothing to compact"
        return (f"{self.out}: {_parts(self.parts_before)} -> {self.parts_after} ({_parts(self.rewritten)}, "
                f"{self.rows} rows rewritten into {len(self.new_parts)}) in {self.seconds:.1f} s")


def _parts(count: int) -> str:
    return f"{count} part" + ("" if count == 1 else "s")


def _no_step(step: str) -> None:
    pass


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _compact_dir(out_dir: Path) -> Path:
    """``_compact``, a real folder (a link there is refused: no write of the sink follows one)."""
    return sink.real_subfolder(out_dir, journal.COMPACT_DIR, "keeps its compaction journal", refused=CompactError,
                               failed=CompactError)


def finish(out_dir: Path, entry: journal.Journal, on_step: Callable[[str], None] = _no_step) -> None:
    """Steps 3 to 5 of a committed compaction; each is skipped where already done, so a killed one is
    finished by calling this again."""
    staged = entry.staged(out_dir)
    for name in entry.parts:
        if (staged / name).is_file():
            os.replace(staged / name, out_dir / name)
    _fsync_folder(out_dir)
    on_step("renamed")
    for name in entry.replaces:
        if name not in entry.parts:
            try:
                os.unlink(out_dir / name)
            except FileNotFoundError:
                pass
    _fsync_folder(out_dir)
    on_step("deleted")
    shutil.rmtree(staged, ignore_errors=True)
    atomic_write_bytes(journal.journal_path(out_dir, entry.id, ".done"), b"", fsync_dir=True, follow_folder_link=False)
    on_step("done")


def recover(out_dir: str | Path) -> list[str]:
    """Finish every committed compaction and roll back any killed before its commit point. Call with
    the OUT_DIR lock held. Returns the ids of the compactions finished."""
    out_dir = Path(out_dir)
    folder = out_dir / journal.COMPACT_DIR
    if not folder.is_dir() or folder.is_symlink():
        return []
    finished = []
    for entry in journal.read_journals(out_dir, unfinished_only=True):
        finish(out_dir, entry)
        finished.append(entry.id)
    committed = set(journal.journal_ids(out_dir))
    for staged in folder.iterdir():  # staged parts of a compaction killed before its journal: roll back
        if staged.is_dir() and not staged.is_symlink() and journal.JOURNAL_NAME.fullmatch(staged.name + ".json") \
                and staged.name not in committed:
            shutil.rmtree(staged)
    return finished


def _part_rows(path: Path) -> tuple[int, int]:
    """(rows, the schema version that wrote it) from a part's footer."""
    meta = pq.read_metadata(path)
    version = (meta.schema.to_arrow_schema().metadata or {}).get(verdicts.VERSION_KEY.encode(), b"1")
    try:
        return meta.num_rows, int(version)
    except ValueError:
        return meta.num_rows, 1


def _plan(parts: list[Path], rows_per_part: int) -> tuple[list[Path], list[Path], int]:
    """(the large leading parts kept, the parts to rewrite, their rows)."""
    rows, kept = [], 0
    for path in parts:
        count, version = _part_rows(path)
        if version > verdicts.SCHEMA_VERSION:
            raise CompactError(f"{path.name} was written by a newer dfscan (schema {version}); compact with that "
                               f"release, so its new columns are kept")
        rows.append(count)
    while kept < len(parts) and rows[kept] >= rows_per_part // 2:
        kept += 1
    return parts[:kept], parts[kept:], sum(rows[kept:])


def _batches(sources: list[Path]) -> Iterator[pa.RecordBatch]:
    """The rows of ``sources`` in read order, as the current schema (``verdicts.read_batches``: a column an
    older part lacks reads as null), in batches of ROW_GROUP_ROWS rows (the last one fewer)."""
    pending, rows = [], 0
    for batch in verdicts.read_batches(sources, batch_size=ROW_GROUP_ROWS):
        pending.append(batch)
        rows += batch.num_rows
        if rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(pending, verdicts.VERDICT_SCHEMA)
            yield from table.slice(0, ROW_GROUP_ROWS).combine_chunks().to_batches()
            pending, rows = table.slice(ROW_GROUP_ROWS).to_batches(), rows - ROW_GROUP_ROWS
    if rows:
        yield from pa.Table.from_batches(pending, verdicts.VERDICT_SCHEMA).combine_chunks().to_batches()


def _write_staged(staged: Path, compaction_id: str, sources: list[Path], rows_per_part: int) -> list[dict]:
    """The rows of ``sources``, in order, as new parts in ``staged``; returns [{"name", "rows"}]."""
    batches = (batch for batch in _batches(sources) if batch.num_rows)
    batch, written = next(batches, None), []
    while batch is not None:
        name, rows = f"part-{compaction_id}-{len(written):06d}.parquet", 0
        with atomic_file(staged / name, fsync_dir=True, follow_folder_link=False) as stream, \
                pq.ParquetWriter(stream, verdicts.VERDICT_SCHEMA, compression="zstd") as writer:
            while batch is not None and rows < rows_per_part:
                take = min(batch.num_rows, rows_per_part - rows)
                writer.write_batch(batch.slice(0, take), row_group_size=ROW_GROUP_ROWS)
                rows += take
                batch = batch.slice(take) if take < batch.num_rows else next(batches, None)
        written.append({"name": name, "rows": rows})
    return written


def _compaction_id(parts: list[Path]) -> str:
    """A new run id that sorts after every part's (the same second as the newest part's run: the next id)."""
    compaction_id = sink.new_run_id()
    last = sink.part_run_id(parts[-1].name)
    if compaction_id > last:
        return compaction_id
    stamp, _, suffix = last.rpartition("-")
    if re.fullmatch(sink.RUN_ID_PATTERN, last) and compaction_id.startswith(stamp) and suffix != "f" * 8:
        return f"{stamp}-{int(suffix, 16) + 1:08x}"
    raise CompactError(f"this machine's clock is behind the newest part's run id ({parts[-1].name}); compact "
                       f"once it is set right, or the compacted rows would sort before newer ones")


def compact_locked(out_dir: str | Path, rows_per_part: int = ROWS_PER_PART,
                   on_step: Callable[[str], None] = _no_step) -> CompactResult:
    """Compact OUT_DIR; the caller holds its lock (``dfscan run --compact-after`` does). Raises CompactError
    (a failed write among them) or journal.JournalError."""
    try:
        return _compact(Path(out_dir), rows_per_part, on_step)
    except (OSError, pa.ArrowException) as exc:  # no permission, a full disk, a part that cannot be read
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise CompactError(f"cannot compact {out_dir}: {reason}; the committed rows are as they were, or the "
                           f"next compaction or run completes this one") from None


def _compact(out_dir: Path, rows_per_part: int, on_step: Callable[[str], None]) -> CompactResult:
    started = time.monotonic()
    folder = _compact_dir(out_dir)
    recovered = recover(out_dir)
    parts = verdicts.part_files(out_dir)
    kept, sources, rows = _plan(parts, rows_per_part)
    result = CompactResult(out=str(out_dir), parts_before=len(parts), parts_after=len(parts), rows=0, rewritten=0,
                           new_parts=[], seconds=0.0, recovered=recovered)
    if len(sources) < 2:  # one small part after the large ones: rewriting it gains nothing
        result.seconds = round(time.monotonic() - started, 3)
        return result
    compaction_id = _compaction_id(parts)
    staged = folder / compaction_id
    staged.mkdir()
    try:
        new = _write_staged(staged, compaction_id, sources, rows_per_part)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if sum(p["rows"] for p in new) != rows:
        shutil.rmtree(staged, ignore_errors=True)
        raise CompactError(f"compaction read {sum(p['rows'] for p in new)} rows from parts whose footers say {rows}; "
                           f"nothing was changed")
    _fsync_folder(staged)
    on_step("staged")
    record = {"id": compaction_id, "replaces": [p.name for p in sources], "parts": new, "rows": rows,
              "kept": [p.name for p in kept], "schema_version": verdicts.SCHEMA_VERSION,
              "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_bytes(journal.journal_path(out_dir, compaction_id), (json.dumps(record, indent=1) + "\n").encode(),
                       fsync_dir=True, follow_folder_link=False)
    on_step("journal")
    finish(out_dir, journal.Journal(id=compaction_id, replaces=tuple(record["replaces"]),
                                    parts=tuple(p["name"] for p in new), rows=rows, done=False), on_step)
    result.parts_after = len(kept) + len(new)
    result.rows, result.rewritten, result.new_parts = rows, len(sources), [p["name"] for p in new]
    result.seconds = round(time.monotonic() - started, 3)
    return result


def compact(out_dir: str | Path, rows_per_part: int = ROWS_PER_PART,
            on_step: Callable[[str], None] = _no_step) -> CompactResult:
    """`dfscan compact OUT_DIR`: take the OUT_DIR lock (raises sink.OutDirLocked while a run writes there),
    then compact. Raises FileNotFoundError (no verdicts there), ValueError, CompactError, journal.JournalError
    and the lock's sink.OutDirRefused / OutDirFailed."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise FileNotFoundError(f"no verdicts at {out_dir}")
    if rows_per_part < 1:
        raise ValueError(f"rows per part must be 1 or more, got {rows_per_part}")
    with sink.OutDirLock(out_dir, "compaction"):
        return compact_locked(out_dir, rows_per_part, on_step)
