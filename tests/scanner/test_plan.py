"""Pure decisions of the driver: how many actors with what resources. (Which files a rerun scans:
test_index.py.)"""

from __future__ import annotations

import pytest

from dfscan.kernels.errors import is_device_error
from dfscan.scanner.workers import WorkerPlan, plan_workers

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
