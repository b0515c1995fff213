"""The verdict sink: a Parquet dataset in OUT_DIR that readers never see half-written.

Layout of OUT_DIR (everything starting with '_' or '.' is ignored by pyarrow.dataset, Spark and DuckDB
hive readers, so only finished parts are data):

    part-<run_id>-<seq>.parquet     committed verdict rows, immutable once renamed into place
    .part-<run_id>-<seq>.parquet.tmp  a part being written (fsync'd, then os.replace'd)
    _runs/<run_id>.json             the run's manifest, written when the run completes
    _runs/<run_id>.SUCCESS          written after the manifest: the run completed
    _SUCCESS                        the newest completed run (Hadoop/Spark convention)
    _lock                           flock'd by the one run allowed to write

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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
RUNS_DIR = "_runs"
LOCK_NAME = "_lock"
SUCCESS_NAME = "_SUCCESS"

# One row per file scanned in a run. Schema changes bump SCHEMA_VERSION (kept in the Parquet
# metadata and in every manifest) so readers can tell old parts from new ones.
VERDICT_SCHEMA = pa.schema(
    [
        # the file
        ("path", pa.string()),  # relative to archive
        ("archive", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("inode", pa.int64()),
        # the outcome
        ("status", pa.string()),  # "ok" | "error"
        ("error_class", pa.string()),  # kernels.errors.ErrorClass value, null when ok
        ("error_message", pa.string()),
        ("p_fake", pa.float32()),  # null on error
        ("verdict", pa.string()),  # "real" | "fake", null on error
        ("threshold", pa.float32()),
        # what was read
        ("frame_indices", pa.list_(pa.int32())),
        ("codec", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("frame_count", pa.int64()),
        ("fps", pa.float64()),
        ("duration_s", pa.float64()),
        ("decoder", pa.string()),
        ("sampling", pa.string()),
        # provenance
        ("model_name", pa.string()),
        ("model_sha256", pa.string()),
        ("run_id", pa.string()),
        ("scanned_at", pa.timestamp("us", tz="UTC")),
        ("worker", pa.string()),  # host:node/gpuN or host:node/cpu
    ],
    metadata={"dfscan.schema_version": str(SCHEMA_VERSION)},
)


class OutDirLocked(RuntimeError):
    """Another run holds OUT_DIR's lock."""


def new_run_id() -> str:
    """Sortable by start time, unique across hosts: 20240131T020000Z-1a2b3c4d."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{os.urandom(4).hex()}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write under a hidden name in the same directory, fsync, then rename into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


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


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts keyed by column name; missing keys are null) to a table of VERDICT_SCHEMA."""
    columns = {name: [row.get(name) for row in rows] for name in VERDICT_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=VERDICT_SCHEMA)


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
        tmp = self.out_dir / f".{name}.tmp"  # hidden: readers skip it even if we die mid-write
        table = rows_to_table(self._buffer)
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.out_dir / name)
        _fsync_dir(self.out_dir)
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
    return sorted(p.name for p in Path(out_dir).glob("part-*.parquet"))


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
        "schema_version": SCHEMA_VERSION,
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
    atomic_write_bytes(path, (json.dumps(manifest, indent=2, default=str) + "\n").encode())
    atomic_write_bytes(out_dir / RUNS_DIR / f"{run_id}.SUCCESS", b"")
    atomic_write_bytes(out_dir / SUCCESS_NAME, (json.dumps({"run_id": run_id}) + "\n").encode())
    return path


def open_dataset(out_dir: Path) -> pads.Dataset:
    """The committed verdicts. The explicit schema lets an empty OUT_DIR read as zero rows."""
    return pads.dataset(str(out_dir), format="parquet", schema=VERDICT_SCHEMA)


def read_verdicts(out_dir: Path, columns: list[str] | None = None, archive: str | None = None) -> pa.Table:
    dataset = open_dataset(out_dir)
    flt = (pads.field("archive") == archive) if archive is not None else None
    return dataset.to_table(columns=columns, filter=flt)


def newest_rows(table: pa.Table) -> pa.Table:
    """The newest row per (archive, path), by scanned_at: the current verdict of each file."""
    if table.num_rows == 0:
        return table
    order = table.sort_by([("scanned_at", "descending")])
    keys = pc.binary_join_element_wise(order["archive"], order["path"], "\x00")
    first = {}
    for i, key in enumerate(keys.to_pylist()):
        first.setdefault(key, i)  # descending: the first occurrence is the newest
    return order.take(sorted(first.values())).sort_by([("archive", "ascending"), ("path", "ascending")])


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
    cols = ["path", "archive", "size", "mtime_ns", "inode", "model_sha256", "status", "scanned_at"]
    table = read_verdicts(out_dir, columns=cols, archive=archive)
    if table.num_rows == 0:
        return {}
    table = table.sort_by([("scanned_at", "ascending")])  # later rows overwrite earlier ones
    out: dict[str, Committed] = {}
    for path, size, mtime_ns, inode, sha, status in zip(
            *(table[c].to_pylist() for c in ("path", "size", "mtime_ns", "inode", "model_sha256", "status"))):
        out[path] = Committed(size=size, mtime_ns=mtime_ns, inode=inode, model_sha256=sha,
                              is_error=status != "ok")
    return out
