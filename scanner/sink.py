"""The verdict sink: a Parquet dataset in OUT_DIR that readers never see half-written.

Layout of OUT_DIR (everything starting with '_' or '.' is ignored by pyarrow.dataset, Spark and DuckDB
hive readers, so only finished parts are data):

    part-<run_id>-<seq>.parquet     committed verdict rows (scanner.verdicts), immutable once renamed
    .part-<run_id>-<seq>.parquet.<random>.tmp  a part being written (fsync'd, then os.replace'd)
    _runs/<run_id>.json             the run's manifest, written when the run completes
    _runs/<run_id>.SUCCESS          written after the manifest: the run completed
    _SUCCESS                        the newest completed run (Hadoop/Spark convention)
    _lock                           flock'd by the one run allowed to write

Every file is written by kernels.atomic with the folder fsync'd after the rename.

Every renamed part is committed: a driver killed mid-run leaves its finished parts in place and the
next run (same command) skips the files they hold, so nothing is lost or written twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterable

import pyarrow.parquet as pq

from kernels.atomic import atomic_path, atomic_write_bytes
from scanner import verdicts

RUNS_DIR = "_runs"
LOCK_NAME = "_lock"
SUCCESS_NAME = "_SUCCESS"


class OutDirLocked(RuntimeError):
    """Another run holds OUT_DIR's lock."""


def new_run_id() -> str:
    """Sortable by start time, unique across hosts: 20240131T020000Z-1a2b3c4d."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{os.urandom(4).hex()}"


class OutDirLock:
    """An exclusive flock on OUT_DIR/_lock. The kernel drops it when the holder dies, even on SIGKILL,
    so a crashed run never leaves a stale lock behind. (flock is not reliable on every network file
    system; keep OUT_DIR on a local or lock-capable mount.)"""

    def __init__(self, out_dir: Path, run_id: str):
        self.path = Path(out_dir) / LOCK_NAME
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> "OutDirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown holder"
            os.close(fd)
            raise OutDirLocked(f"another dfscan run is writing to {self.path.parent} ({holder}); "
                               f"wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"run {self.run_id}, pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@dataclasses.dataclass
class PartInfo:
    name: str
    rows: int


class PartWriter:
    """Buffers rows and commits them as immutable parts: at ``commit_rows`` rows, after
    ``commit_seconds``, or on ``flush()``. A driver killed between commits loses only the buffer,
    whose files the next run scans again."""

    def __init__(self, out_dir: Path, run_id: str, commit_rows: int = 1024, commit_seconds: float = 30.0):
        self.out_dir = Path(out_dir)
        self.run_id = run_id
        self.commit_rows = max(1, commit_rows)
        self.commit_seconds = commit_seconds
        self.parts: list[PartInfo] = []
        self.write_seconds = 0.0
        self._buffer: list[dict] = []
        self._last_commit = time.monotonic()

    def add(self, rows: Iterable[dict]) -> None:
        self._buffer.extend(rows)
        if (len(self._buffer) >= self.commit_rows
                or (self._buffer and time.monotonic() - self._last_commit >= self.commit_seconds)):
            self.flush()

    def flush(self) -> None:
        self._last_commit = time.monotonic()
        if not self._buffer:
            return
        start = time.perf_counter()
        name = f"part-{self.run_id}-{len(self.parts):06d}.parquet"
        table = verdicts.rows_to_table(self._buffer)
        # Written under a hidden name (readers skip it even if we die mid-write), renamed into place,
        # and the folder flushed: a rerun trusts a committed part to skip its files.
        with atomic_path(self.out_dir / name, fsync_dir=True) as tmp, open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
        self.parts.append(PartInfo(name=name, rows=table.num_rows))
        self._buffer = []
        self.write_seconds += time.perf_counter() - start


def prepare_out_dir(out_dir: Path) -> None:
    """Create OUT_DIR and _runs, and drop temp files that a killed run left behind."""
    out_dir = Path(out_dir)
    (out_dir / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(".part-*.tmp"):  # only called under the lock: nobody writes them
        leftover.unlink(missing_ok=True)


def committed_parts(out_dir: Path) -> list[str]:
    return [path.name for path in verdicts.part_files(out_dir)]


def completed_runs(out_dir: Path) -> set[str]:
    return {p.name[: -len(".SUCCESS")] for p in (Path(out_dir) / RUNS_DIR).glob("*.SUCCESS")}


def part_run_id(name: str) -> str:
    """'part-<run_id>-<seq>.parquet' -> run_id."""
    return name[len("part-"): -len(".parquet")].rsplit("-", 1)[0]


def orphan_parts(out_dir: Path) -> list[str]:
    """Parts of runs that never completed (killed drivers). They are valid data; the next completed
    run lists them in its manifest as adopted."""
    done = completed_runs(out_dir)
    return [name for name in committed_parts(out_dir) if part_run_id(name) not in done]


def commit_run(out_dir: Path, run_id: str, parts: list[PartInfo], model_sha256: str, model_name: str,
               config: dict, summary: dict, adopted_parts: list[str]) -> Path:
    """Manifest first, then the run's SUCCESS marker, then the top-level _SUCCESS."""
    out_dir = Path(out_dir)
    manifest = {
        "run_id": run_id,
        "schema_version": verdicts.SCHEMA_VERSION,
        "files": [p.name for p in parts],
        "row_counts": {p.name: p.rows for p in parts},
        "rows": sum(p.rows for p in parts),
        "adopted_parts": adopted_parts,
        "model_sha256": model_sha256,
        "model_name": model_name,
        "config": config,
        "summary": summary,
        "committed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    path = out_dir / RUNS_DIR / f"{run_id}.json"
    atomic_write_bytes(path, (json.dumps(manifest, indent=2, default=str) + "\n").encode(), fsync_dir=True)
    atomic_write_bytes(out_dir / RUNS_DIR / f"{run_id}.SUCCESS", b"", fsync_dir=True)
    atomic_write_bytes(out_dir / SUCCESS_NAME, (json.dumps({"run_id": run_id}) + "\n").encode(), fsync_dir=True)
    return path


@dataclasses.dataclass(frozen=True, slots=True)  # slots: a million of these stay small
class Committed:
    """What the incremental filter needs to know about a file's newest committed row."""

    size: int
    mtime_ns: int
    inode: int
    model_sha256: str
    is_error: bool


def committed_index(out_dir: Path, archive: str) -> dict[str, Committed]:
    """Newest committed row per path of ``archive``. Only a few narrow columns are read."""
    fields = ("size", "mtime_ns", "inode", "model_sha256", "status")
    table = verdicts.read_table(out_dir, columns=["path", "path_bytes", "archive", "scanned_at", *fields],
                                archive=archive)
    newest = verdicts.newest_rows(table)
    return {verdicts.walk_path(path, raw): Committed(size=size, mtime_ns=mtime_ns, inode=inode, model_sha256=sha,
                                                     is_error=status != "ok")
            for path, raw, size, mtime_ns, inode, sha, status in zip(
                newest["path"].to_pylist(), newest["path_bytes"].to_pylist(), *(newest[c].to_pylist() for c in fields))}
