"""The scan's policy without Ray: retry alone, bisect, blame one file, name the class, share the
timeout. The chaos tests (test_faults.py) check the same rules against real dying workers."""

import pytest

from dfscan.kernels.errors import ErrorClass
from dfscan.scanner.policy import (CrashVerdict, WorkItem, after_failure, batches, failure_limit, timeout_for,
                            SINGLE_FILE_CRASHES)
from dfscan.scanner.walk import FileEntry

ENTRIES = [FileEntry(path=f"v{i}.mp4", size=1, mtime_ns=0, inode=i) for i in range(8)]


def test_batches_cover_every_entry_once_in_order():
    items = list(batches(iter(ENTRIES[:7]), 3))
    assert [[e.path for e in item.entries] for item in items] == [["v0.mp4", "v1.mp4", "v2.mp4"],
                                                                  ["v3.mp4", "v4.mp4", "v5.mp4"], ["v6.mp4"]]
    assert not any(item.isolated or item.crashes for item in items)


def test_a_failed_batch_runs_alone_then_splits_then_blames_one_file():
    """A batch of 4 holding one poison file: alone, then halves, then quarters, until the file
    fails alone SINGLE_FILE_CRASHES times; its batch-mates are never blamed."""
    pending = [WorkItem(entries=ENTRIES[:4])]
    verdicts, rounds = [], 0
    while pending:
        rounds += 1
        item = pending.pop(0)
        if not any(e.path == "v2.mp4" for e in item.entries):
            continue  # a batch without the poison file finishes
        decision = after_failure(item, "RayActorError: died", timeout_s=100)
        if isinstance(decision, CrashVerdict):
            verdicts.append(decision)
        else:
            assert all(d.isolated for d in decision)
            pending.extend(decision)
    assert verdicts == [CrashVerdict("v2.mp4", ErrorClass.DECODER_CRASH,
                                     f"the file killed its worker {SINGLE_FILE_CRASHES} times: RayActorError: died")]
    assert rounds == 7  # 4 alone, 4 again, halves 2+2, the poison half's quarters 1+1, v2 again


def test_first_failure_retries_the_same_batch_alone():
    item = WorkItem(entries=ENTRIES[:4])
    assert after_failure(item, "boom", timeout_s=100) == [item]
    assert (item.isolated, item.crashes, item.last_error) == (True, 0, "boom")


def test_hangs_alone_are_a_timeout_and_mixed_failures_a_crash():
    hung = WorkItem(entries=ENTRIES[:1], isolated=True)
    for _ in range(SINGLE_FILE_CRASHES):
        hung.timed_out = True
        decision = after_failure(hung, "killed", timeout_s=450)
    assert decision == CrashVerdict("v0.mp4", ErrorClass.TIMEOUT,
                                    f"scanning the file alone took longer than 450 s, {SINGLE_FILE_CRASHES} times")
    mixed = WorkItem(entries=ENTRIES[:1], isolated=True)
    mixed.timed_out = True
    after_failure(mixed, "killed", timeout_s=450)
    mixed.timed_out = False
    decision = after_failure(mixed, "SIGSEGV", timeout_s=450)
    assert decision.error_class == ErrorClass.DECODER_CRASH
    assert decision.message == "the file killed its worker 2 times: SIGSEGV (1 of those runs hung and were killed)"


@pytest.mark.parametrize("files, expected", [(8, 800), (4, 400), (2, 200), (1, 200)])
def test_hung_batch_deadline_shrinks_with_the_batch(files, expected):
    """A lone retried file waits a quarter of --batch-timeout at least, a half batch half of it."""
    assert timeout_for(WorkItem(entries=ENTRIES[:files]), batch_size=8, batch_timeout_s=800) == expected


def test_the_scan_gives_up_after_more_failures_in_a_row_with_more_actors():
    assert failure_limit(1) == 14 and failure_limit(4) == 26
