"""The rerun's decision, streamed: which walked files need a scan, against the committed rows, with memory
that does not grow by Python objects per file.

A file is skipped when its newest committed row (of this archive; newest by ``scanned_at``, ties to the
row read last, as ``verdicts.newest_rows``) has the file's size, mtime_ns and inode, was written by this
run's model, and is not an error row under ``--retry-errors``. Everything else is scanned: new files,
moved files (a new path), changed files, files of another model, errors when retried.

The index keeps, per skippable file, two 64-bit BLAKE2b digests in numpy arrays (16 bytes a file):
``path`` of the name's bytes and ``stat`` of (name, size, mtime_ns, inode), sorted by ``path``. The walk
is checked in batches: each batch's digests are looked up with one ``np.searchsorted``, so neither the
walk nor the index is ever held as Python objects. Building it reads the committed rows part by part,
batch by batch (``verdicts.read_batches``), into 24 bytes a row (path digest; stat digest, 0 where the row
cannot let the file be skipped; scanned_at), then keeps the newest row of each path digest with a stable
``np.lexsort``, one sixteenth of the path digests at a time.

Exactness: a file is wrongly skipped only when both its path digest and its stat digest equal those of a
committed file's newest row (for the same name, a 2**-64 chance that a change goes unseen). Two names
sharing a path digest only cost a scan: the newest row of the two hides the other's, and a stat digest
covers the name too, so neither file matches and both are scanned again.
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import os
import struct
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dfscan.scanner import verdicts
from dfscan.scanner.walk import FileEntry

WALK_BATCH = 4096  # walked entries checked at once
READ_BATCH = 16384  # committed rows turned into digests at once
PARTITION_BITS = 4
PARTITIONS = 1 << PARTITION_BITS  # the index is built a sixteenth at a time
_STAT = struct.Struct("<qqq")
_OLDEST = -(2 ** 63)  # a row without scanned_at is older than any row with one


def _digests(names: list[bytes], sizes: list, mtimes: list, inodes: list) -> tuple[np.ndarray, np.ndarray]:
    """The path and stat digests of files: the one hashing both the index and the walk go through."""
    path_out, stat_out = bytearray(), bytearray()
    for name, size, mtime_ns, inode in zip(names, sizes, mtimes, inodes):
        path_out += hashlib.blake2b(name, digest_size=8).digest()
        if size is None or mtime_ns is None or inode is None:  # a row without a stat never matches a file
            stat_out += bytes(8)
        else:
            stat_out += hashlib.blake2b(name + _STAT.pack(size, mtime_ns, inode), digest_size=8).digest()
    return np.frombuffer(path_out, "<u8"), np.frombuffer(stat_out, "<u8")


def _mapped(n: int, dtype: str) -> np.ndarray:
    """An array in an anonymous mapping of its own: its untouched pages cost nothing, and it goes back to
    the system as soon as it is dropped, however fragmented the allocator's heap is."""
    return np.frombuffer(mmap.mmap(-1, max(1, n) * np.dtype(dtype).itemsize), dtype)[:n]


class _Rows:
    """One partition's committed rows while the index is built: path digest, stat digest, scanned_at."""

    def __init__(self, capacity: int):
        self.size = 0
        self.path, self.stat, self.when = _mapped(capacity, "<u8"), _mapped(capacity, "<u8"), _mapped(capacity, "<i8")

    def append(self, path: np.ndarray, stat: np.ndarray, when: np.ndarray) -> None:
        end = self.size + len(path)
        if end > len(self.path):  # more than its share: twice the room (rare: the digests are uniform)
            grown = [_mapped(2 * end, column.dtype.str) for column in (self.path, self.stat, self.when)]
            for new, old in zip(grown, (self.path, self.stat, self.when)):
                new[:self.size] = old[:self.size]
            self.path, self.stat, self.when = grown
        self.path[self.size:end], self.stat[self.size:end], self.when[self.size:end] = path, stat, when
        self.size = end

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.path[:self.size], self.stat[:self.size], self.when[:self.size]


class CommittedIndex:
    """The files a rerun may skip (see the module docstring). Read-only once built: the counting
    thread of a run may look up entries while the scan does."""

    def __init__(self, path: np.ndarray, stat: np.ndarray):
        self.path, self.stat = path, stat  # path digests sorted (unique); stat digests aligned with them

    def __len__(self) -> int:
        return len(self.path)

    @classmethod
    def empty(cls) -> "CommittedIndex":
        """Nothing to skip (``--full``, or no committed row)."""
        return cls(np.empty(0, "<u8"), np.empty(0, "<u8"))

    @classmethod
    def build(cls, out_dir: str | Path, archive: str, model_sha256: str, retry_errors: bool) -> "CommittedIndex":
        """The skippable files of ``archive`` from the rows committed in ``out_dir``."""
        parts = verdicts.part_files(out_dir)
        total = sum(pq.read_metadata(part).num_rows for part in parts)  # the most rows the archive leaves
        # Rows go to PARTITIONS by their path digest's top bits, in read order: each is sorted on its own and
        # then given back, and in partition order the digests come out sorted.
        raw = [_Rows(total // PARTITIONS + total // (4 * PARTITIONS) + 1024) for _ in range(PARTITIONS)]
        columns = ["path", "path_bytes", "scanned_at", "size", "mtime_ns", "inode", "model_sha256", "status"]
        for batch in verdicts.read_batches(parts, columns, archive, READ_BATCH):
            if batch.num_rows == 0:
                continue
            # The walk's name of a row: its bytes where it has them (version 2), else the text's UTF-8.
            names = pc.coalesce(batch["path_bytes"], batch["path"].cast(pa.binary()))
            path, stat = _digests(names.to_pylist(), batch["size"].to_pylist(), batch["mtime_ns"].to_pylist(),
                                  batch["inode"].to_pylist())
            ok = pc.fill_null(pc.equal(batch["model_sha256"], model_sha256), False)
            if retry_errors:  # a row whose status is not "ok" is an error, whatever else it says
                ok = pc.and_(ok, pc.fill_null(pc.equal(batch["status"], "ok"), False))
            stat = np.where(ok.to_numpy(zero_copy_only=False), stat, 0)  # 0: the file must be scanned
            when = pc.fill_null(batch["scanned_at"].cast(pa.int64()), _OLDEST).to_numpy()
            partition = path >> np.uint64(64 - PARTITION_BITS)
            order = np.argsort(partition, kind="stable")  # the batch's rows by partition, in read order
            bounds = np.searchsorted(partition[order], np.arange(PARTITIONS + 1))
            for p in range(PARTITIONS):
                if bounds[p] < bounds[p + 1]:
                    rows = order[bounds[p]:bounds[p + 1]]
                    raw[p].append(path[rows], stat[rows], when[rows])
        pa.default_memory_pool().release_unused()  # the reader's buffers, before the sort needs memory
        out_path, out_stat, filled = _mapped(total, "<u8"), _mapped(total, "<u8"), 0  # touched as filled
        for p in range(PARTITIONS):
            path, stat, when = raw[p].columns()
            # Oldest to newest per path digest; lexsort is stable, so of rows scanned at the same instant the
            # one read last comes last, as in verdicts.newest_rows.
            order = np.lexsort((when, path))
            sorted_path = path[order]
            newest = np.ones(len(order), bool)
            newest[:-1] = sorted_path[1:] != sorted_path[:-1]
            rows = order[newest]
            keep = stat[rows] != 0
            found = int(keep.sum())
            out_path[filled:filled + found] = sorted_path[newest][keep]
            out_stat[filled:filled + found] = stat[rows[keep]]
            filled += found
            raw[p] = None  # its memory goes back to the system now
        return cls(out_path[:filled], out_stat[:filled])

    def needs_scan(self, entries: list[FileEntry]) -> np.ndarray:
        """One flag per entry: True where the file must be scanned."""
        names = [os.fsencode(entry.path) for entry in entries]
        path, stat = _digests(names, [e.size for e in entries], [e.mtime_ns for e in entries],
                              [e.inode for e in entries])
        if len(self.path) == 0:
            return np.ones(len(entries), bool)
        at = np.minimum(np.searchsorted(self.path, path), len(self.path) - 1)
        return ~((self.path[at] == path) & (self.stat[at] == stat))

    def select(self, entries: Iterable[FileEntry], batch: int = WALK_BATCH) -> Iterator[FileEntry]:
        """The entries that need a scan, in the walk's order, checked ``batch`` at a time."""
        entries = iter(entries)
        while chunk := list(itertools.islice(entries, batch)):
            for entry, scan in zip(chunk, self.needs_scan(chunk)):
                if scan:
                    yield entry

    def count(self, entries: Iterable[FileEntry]) -> int:
        """How many of ``entries`` need a scan."""
        return sum(1 for _ in self.select(entries))
