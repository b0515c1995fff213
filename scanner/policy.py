"""A scan's policy, as plain data and functions without Ray: how batches are
retried and bisected when workers die, which file is blamed and with what error class, and how long
a batch may run. ``scanner.run`` drives it; ``tests/scanner/test_policy.py`` tests it alone.

The guarantees it serves: every path lives in exactly one WorkItem at a time, and an item either
returns rows (written once) or fails and is replaced by a retry or by its halves, so each scanned file
gets exactly one row per run; a file that keeps killing workers is isolated (a failed batch is retried
alone on an actor, so a second failure is its own, then bisected) and gets DECODER_CRASH, or TIMEOUT
when every one of its failures was a hang.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator

from dfscan.kernels.errors import ErrorClass
from dfscan.scanner.walk import FileEntry

SINGLE_FILE_CRASHES = 2  # a lone file must kill its worker this often before it is blamed
FAILURES_IN_A_ROW_BASE = 10  # failures with no finished batch between them before the scan gives up,
FAILURES_IN_A_ROW_PER_ACTOR = 4  # plus this many per actor: each actor may die on its own poison file
MIN_TIMEOUT_SHARE = 0.25  # a lone retried file still gets a quarter of the batch timeout


@dataclasses.dataclass
class WorkItem:
    entries: list[FileEntry]
    crashes: int = 0  # failures while running alone on an actor: attributable to this item
    isolated: bool = False  # after any failure an item runs alone, so its next failure is its own
    timed_out: bool = False  # its last run was killed for taking longer than its deadline
    timeouts: int = 0  # of ``crashes``, those that were timeouts
    last_error: str = ""


def batches(entries: Iterator[FileEntry], size: int) -> Iterator[WorkItem]:
    while True:
        chunk = list(itertools.islice(entries, size))
        if not chunk:
            return
        yield WorkItem(entries=chunk)


def failure_limit(actors: int) -> int:
    """Failures in a row, with no batch finished between them, after which the scan stops (exit 1): a
    systemic failure (a broken GPU, a model that cannot run) must not become a crash row per file."""
    return FAILURES_IN_A_ROW_BASE + FAILURES_IN_A_ROW_PER_ACTOR * actors


@dataclasses.dataclass(frozen=True)
class CrashVerdict:
    """The row a file gets when it alone keeps killing (or hanging) its worker."""

    path: str
    error_class: ErrorClass
    message: str


def after_failure(item: WorkItem, error: str, timeout_s: float) -> list[WorkItem] | CrashVerdict:
    """What to do with an item whose batch failed: the items to retry (itself, or its two halves),
    or the verdict on its one file. Updates the item's failure counts. ``timeout_s``: the item's
    deadline, named in a TIMEOUT verdict."""
    item.last_error = error
    if item.isolated:
        item.crashes += 1
        item.timeouts += int(item.timed_out)
    item.isolated = True
    if len(item.entries) == 1 and item.crashes >= SINGLE_FILE_CRASHES:
        return crash_verdict(item, timeout_s)
    if len(item.entries) > 1 and item.crashes >= 1:
        half = len(item.entries) // 2
        return [WorkItem(entries=part, isolated=True, last_error=item.last_error)
                for part in (item.entries[:half], item.entries[half:])]
    return [item]


def timeout_for(item: WorkItem, batch_size: int, batch_timeout_s: float) -> float:
    """A batch's share of --batch-timeout: a lone retried file does not wait as long as a full batch
    (at least MIN_TIMEOUT_SHARE of it), so isolating a hung file costs hours less."""
    share = max(len(item.entries) / max(1, batch_size), MIN_TIMEOUT_SHARE)
    return batch_timeout_s * min(1.0, share)


def crash_verdict(item: WorkItem, timeout_s: float) -> CrashVerdict:
    """TIMEOUT when every failure of the file alone was a hang, else DECODER_CRASH with both counts."""
    path = item.entries[0].path
    if item.timeouts == item.crashes:
        return CrashVerdict(path, ErrorClass.TIMEOUT,
                            f"scanning the file alone took longer than {timeout_s:.0f} s, {item.timeouts} times")
    message = f"the file killed its worker {item.crashes} times: {item.last_error}"
    if item.timeouts:
        message = f"{message} ({item.timeouts} of those runs hung and were killed)"
    return CrashVerdict(path, ErrorClass.DECODER_CRASH, message)  # verdicts.driver_row caps its length
