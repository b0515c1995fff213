"""Pure decisions of the driver: which files a rerun scans, and how many actors with what resources."""

from __future__ import annotations

import pytest

from scanner.policy import needs_scan
from scanner.sink import Committed
from scanner.walk import FileEntry
from kernels.errors import is_device_error
from scanner.workers import WorkerPlan, plan_workers

SHA = "a" * 64
ENTRY = FileEntry(path="x.mp4", size=10, mtime_ns=5, inode=7)


@pytest.mark.parametrize("last, full, retry, expected", [
    (None, False, False, True),  # new
    (Committed(10, 5, 7, SHA, False), False, False, False),  # unchanged
    (Committed(11, 5, 7, SHA, False), False, False, True),  # size changed
    (Committed(10, 6, 7, SHA, False), False, False, True),  # mtime_ns changed
    (Committed(10, 5, 8, SHA, False), False, False, True),  # inode changed (replaced by rename)
    (Committed(10, 5, 7, "b" * 64, False), False, False, True),  # scanned by another model
    (Committed(10, 5, 7, SHA, True), False, False, False),  # an error stays an error ...
    (Committed(10, 5, 7, SHA, True), False, True, True),  # ... unless --retry-errors
    (Committed(10, 5, 7, SHA, False), True, False, True),  # --full
])
def test_needs_scan(last, full, retry, expected):
    committed = {} if last is None else {"x.mp4": last}
    assert needs_scan(ENTRY, committed, SHA, full, retry) is expected


def test_plan_workers():
    # Every GPU, as many workers on each as its share of cores allows (one per two, at most 4).
    assert plan_workers(None, None, {"CPU": 16, "GPU": 4}) == WorkerPlan(8, 0.5, 1.0)
    assert plan_workers(2, None, {"CPU": 16, "GPU": 4}) == WorkerPlan(8, 0.25, 1.0)
    assert plan_workers(2, None, {"CPU": 16, "GPU": 4}, workers_per_gpu=1) == WorkerPlan(2, 1.0, 1.0)
    assert plan_workers(0, None, {"CPU": 16, "GPU": 4}) == WorkerPlan(8, 0.0, 1.0)  # --gpus 0: CPU workers
    assert plan_workers(None, None, {"CPU": 2}) == WorkerPlan(1, 0.0, 1.0)  # no GPU: one per two cores
    assert plan_workers(None, 4, {"CPU": 2}) == WorkerPlan(4, 0.0, 0.5)  # never more CPUs than exist
    with pytest.raises(ValueError, match="has 2 GPUs"):
        plan_workers(4, None, {"CPU": 8, "GPU": 2})


def test_cuda_errors_are_recognised():
    assert is_device_error(RuntimeError("CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access"))
    assert is_device_error(RuntimeError("cudaErrorLaunchFailure"))
    assert not is_device_error(ValueError("bad shape"))
