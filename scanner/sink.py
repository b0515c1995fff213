"""The verdict sink: a Parquet dataset in OUT_DIR that readers never see half-written.

Layout of OUT_DIR (everything starting with '_' or '.' is ignored by pyarrow.dataset, Spark and DuckDB
hive readers, so only finished parts are data):

    part-<run_id>-<seq>.parquet     committed verdict rows (scanner.verdicts), immutable once renamed
    .part-<run_id>-<seq>.parquet.<random>.tmp  a part being written (fsync'd, then os.replace'd)
    _runs/<run_id>.json             the run's manifest, written when the run completes
    _runs/<run_id>.SUCCESS          written after the manifest: the run completed
    _SUCCESS                        the newest completed run (Hadoop/Spark convention)
    _lock                           flock'd by the one run allowed to write
    _quarantine/part-*.parquet      committed parts found damaged, moved out of the dataset (scanner.quarantine)
    _compact/                       `dfscan compact`'s journal and staged parts (scanner.journal)

Every file is written by kernels.atomic with the folder fsync'd after the rename.

A nightly run is often root's, over folders other people fill, so no write of the sink follows a link:
OUT_DIR and _runs must be real folders (a link there is refused), temporaries are created new and
written through their own descriptor, a link planted at a final name is replaced by the rename (its
target is never written), and the lock file is opened without following links and must be a regular
file with one name. Run as root, OUT_DIR and _runs must not be writable by other users (unless sticky).
A killed run's temporaries are cleared by the next run: exactly the names kernels.atomic gives this
module's files, regular files only, never a user's look-alike.

Failures are one line: ``OutDirRefused`` (a usage error: nothing was written) and ``OutDirFailed`` (a
write failed: no permission, disk full; committed parts are never touched, so a rerun carries on).

Every renamed part is committed: a driver killed mid-run leaves its finished parts in place and the
next run (same command) skips the files they hold, so nothing is lost or written twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import fcntl
import json
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Iterable

import pyarrow.parquet as pq

from dfscan.kernels.atomic import atomic_file, atomic_write_bytes, temporary_name_pattern
from dfscan.scanner import journal, verdicts

RUNS_DIR = "_runs"
MAX_MANIFEST_BYTES = 64 << 20  # a manifest lists a run's parts: far below this
LOCK_NAME = "_lock"
SUCCESS_NAME = "_SUCCESS"
RUN_ID_PATTERN = r"\d{8}T\d{6}Z-[0-9a-f]{8}"  # what new_run_id makes
# The temporaries of dfscan's own files, the only names a run ever deletes.
_LEFTOVERS = {"": re.compile(temporary_name_pattern(rf"(?:part-{RUN_ID_PATTERN}-\d{{6}}\.parquet|{SUCCESS_NAME})")),
              RUNS_DIR: re.compile(temporary_name_pattern(rf"{RUN_ID_PATTERN}\.(?:json|SUCCESS)"))}


class OutDirLocked(RuntimeError):
    """Another run holds OUT_DIR's lock."""


class OutDirRefused(ValueError):
    """OUT_DIR, or a name in it where dfscan keeps its own files, is not safe to write (a link, a folder
    others can write while running as root, the archive itself). Nothing was written: a usage error."""


class OutDirFailed(RuntimeError):
    """A write to OUT_DIR failed (no permission, disk full). Committed parts are untouched."""


def _failed(what: str, exc: OSError, then: str = "") -> OutDirFailed:
    return OutDirFailed(f"{what}: {exc.strerror or exc}" + (f"; {then}" if then else ""))


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a folder" if stat.S_ISDIR(mode) else "not a regular file"


def shared_writable(mode: int) -> bool:
    """Whether users other than the owner can create or rename entries in a folder of this mode (group
    or others may write, and no sticky bit keeps them to their own entries)."""
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH)) and not mode & stat.S_ISVTX


def _refuse_shared_as_root(folder: Path, info: os.stat_result, refused: type[Exception] | None = None) -> None:
    if os.geteuid() == 0 and shared_writable(info.st_mode):
        raise (refused or OutDirRefused)(
            f"{folder} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}) and dfscan runs as root, "
            f"so they could plant links in it; run chmod go-w {folder} (or chmod +t {folder})")


def real_subfolder(out_dir: Path, name: str, purpose: str, refused: type[Exception] | None = None,
                   failed: type[Exception] | None = None) -> Path:
    """OUT_DIR/name, created when missing, and refused unless it is a real folder (a link there is never
    followed: every write of the sink goes through it) that others may not write while dfscan runs as
    root. ``purpose`` finishes "dfscan ... in a folder there"; ``refused`` and ``failed`` are the caller's
    error classes (default OutDirRefused, OutDirFailed)."""
    refused, failed = refused or OutDirRefused, failed or OutDirFailed
    folder = Path(out_dir) / name
    try:
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            folder.mkdir()
            info = os.lstat(folder)
    except OSError as exc:
        raise failed(f"cannot create {folder}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):  # lstat: a link to a folder is no folder of ours
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a file"
        raise refused(f"{folder} is not a folder but {kind}; dfscan {purpose} in a folder there and never writes "
                      f"through links: remove it")
    _refuse_shared_as_root(folder, info, refused)
    return folder


def check_out_dir(out_dir: Path, archive: Path) -> None:
    """The usage checks of OUT_DIR, done before anything is written; creates it when missing. OUT_DIR
    must lie outside the archive: not the archive, not a folder holding it, not a folder inside it (the
    people who fill the archive could then plant or replace dfscan's own files)."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise OutDirRefused(f"out dir is a symbolic link: {out_dir}; give the folder itself "
                            f"({os.path.realpath(out_dir)})")
    real_out, real_archive = Path(os.path.realpath(out_dir)), Path(os.path.realpath(archive))
    if real_archive.is_relative_to(real_out):
        raise OutDirRefused(f"out dir {out_dir} is the archive or contains it; write the verdicts to a folder "
                            f"outside the archive")
    if real_out.is_relative_to(real_archive):  # checked before mkdir: nothing is created in the archive
        raise OutDirRefused(f"out dir {out_dir} is inside the archive {archive}; write the verdicts to a folder "
                            f"outside the archive (e.g. --out /verdicts beside /archive)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutDirRefused(f"cannot create out dir {out_dir}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutDirRefused(f"out dir is not writable: {out_dir}")
    _refuse_shared_as_root(out_dir, os.lstat(out_dir))


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
        """Raises OutDirLocked, OutDirRefused (the lock's name holds a link, a folder, a device or a file
        with a second name: truncating it would write elsewhere) or OutDirFailed."""
        refused = f"{self.path} is {{}}, not dfscan's lock file; remove it"
        try:
            planted = os.lstat(self.path)
        except FileNotFoundError:
            planted = None
        except OSError as exc:
            raise _failed(f"cannot open the lock file {self.path}", exc) from None
        if planted is not None and not stat.S_ISREG(planted.st_mode):  # never open a device or a FIFO
            raise OutDirRefused(refused.format(_kind(planted.st_mode)))
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link planted since the lstat
                raise OutDirRefused(refused.format("a symbolic link")) from None
            raise _failed(f"cannot open the lock file {self.path}", exc) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                raise OutDirRefused(refused.format(_kind(info.st_mode) if not stat.S_ISREG(info.st_mode)
                                                   else "a file with another name too (a hard link)"))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown holder"
                raise OutDirLocked(f"another dfscan run is writing to {self.path.parent} ({holder}); "
                                   f"wait for it to finish") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"run {self.run_id}, pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise _failed(f"cannot write the lock file {self.path}", exc) from None
        except BaseException:
            os.close(fd)
            raise
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
        try:
            with atomic_file(self.out_dir / name, fsync_dir=True, follow_folder_link=False) as stream:
                pq.write_table(table, stream, compression="zstd")
        except OSError as exc:
            raise _failed(f"cannot commit {table.num_rows} verdict rows to {self.out_dir}", exc,
                          "the parts committed so far stay, and the next run scans the other files again") from None
        self.parts.append(PartInfo(name=name, rows=table.num_rows))
        self._buffer = []
        self.write_seconds += time.perf_counter() - start


def prepare_out_dir(out_dir: Path) -> None:
    """Create OUT_DIR and _runs (real folders, never links) and delete the temporaries a killed run
    left behind: regular files named exactly as kernels.atomic names this module's files, nothing
    else. Called under the lock, so no other run is writing them."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not stat.S_ISDIR(os.lstat(out_dir).st_mode):
            raise OutDirRefused(f"out dir is a symbolic link: {out_dir}; give the folder itself")
    except OSError as exc:
        raise _failed(f"cannot create {out_dir}", exc) from None
    runs = real_subfolder(out_dir, RUNS_DIR, "keeps its run records")
    if not os.access(runs, os.W_OK | os.X_OK):  # refused before any part is written, not after
        raise OutDirFailed(f"cannot record runs in {runs}: it is not writable")
    for folder, pattern in _LEFTOVERS.items():
        try:
            with os.scandir(out_dir / folder) as entries:
                leftovers = [e.path for e in entries if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
            for leftover in leftovers:
                os.unlink(leftover)
        except OSError as exc:
            raise _failed(f"cannot clear a killed run's temporary files in {out_dir / folder}", exc) from None


def committed_parts(out_dir: Path) -> list[str]:
    return [path.name for path in verdicts.part_files(out_dir)]


def completed_runs(out_dir: Path) -> set[str]:
    return {p.name[: -len(".SUCCESS")] for p in (Path(out_dir) / RUNS_DIR).glob("*.SUCCESS")}


def read_manifests(out_dir: Path) -> dict[str, dict]:
    """The manifests of the completed runs, by run id; one that cannot be read (damaged: not UTF-8,
    not JSON, not a JSON object) is left out."""
    manifests = {}
    for run_id in sorted(completed_runs(out_dir)):
        path = Path(out_dir) / RUNS_DIR / f"{run_id}.json"
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_MANIFEST_BYTES:
                manifest = json.loads(path.read_text())
                if isinstance(manifest, dict):
                    manifests[run_id] = manifest
        except (OSError, ValueError, RecursionError):
            continue
    return manifests


def part_run_id(name: str) -> str:
    """'part-<run_id>-<seq>.parquet' -> run_id."""
    return name[len("part-"): -len(".parquet")].rsplit("-", 1)[0]


def orphan_parts(out_dir: Path) -> list[str]:
    """Parts of runs that never completed (killed drivers). They are valid data; the next completed
    run lists them in its manifest as adopted."""
    done = completed_runs(out_dir) | set(journal.journal_ids(out_dir))  # compacted parts: scanner.compact
    return [name for name in committed_parts(out_dir) if part_run_id(name) not in done]


def commit_run(out_dir: Path, run_id: str, parts: list[PartInfo], model_sha256: str, model_name: str,
               config: dict, summary: dict, adopted_parts: list[str], model_trust: dict | None = None,
               quarantined: list[dict] | None = None) -> Path:
    """Manifest first, then the run's SUCCESS marker, then the top-level _SUCCESS. ``model_trust``:
    what the model's card says of its quality (kernels.trust), which `dfscan report` shows;
    ``quarantined``: the damaged parts the run moved out of the dataset, when and why (scanner.quarantine)."""
    out_dir = Path(out_dir)
    manifest = {
        "run_id": run_id,
        "schema_version": verdicts.SCHEMA_VERSION,
        "files": [p.name for p in parts],
        "row_counts": {p.name: p.rows for p in parts},
        "rows": sum(p.rows for p in parts),
        "adopted_parts": adopted_parts,
        "quarantined": quarantined or [],
        "model_sha256": model_sha256,
        "model_name": model_name,
        "model_trust": model_trust,
        "config": config,
        "summary": summary,
        "committed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    path = out_dir / RUNS_DIR / f"{run_id}.json"
    files = ((path, (json.dumps(manifest, indent=2, default=str) + "\n").encode()),
             (out_dir / RUNS_DIR / f"{run_id}.SUCCESS", b""),
             (out_dir / SUCCESS_NAME, (json.dumps({"run_id": run_id}) + "\n").encode()))
    for target, data in files:
        try:
            atomic_write_bytes(target, data, fsync_dir=True, follow_folder_link=False)
        except OSError as exc:
            raise _failed(f"cannot record run {run_id} as complete ({target.name})", exc,
                          f"its {len(parts)} parts are committed, and the next run adopts them") from None
    return path
