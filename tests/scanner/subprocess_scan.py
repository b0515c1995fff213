"""Scans run in a child process, for what one test process cannot do itself.

    python -m tests.scanner.subprocess_scan scan CONFIG_JSON [--batch-delay S]  # a driver the test can SIGKILL
    python -m tests.scanner.subprocess_scan two-node CONFIG_JSON  # a two-node ray.cluster_utils.Cluster

Each prints one JSON line: the summary plus rows per worker label.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dfscan.scanner.config import ScanConfig
from dfscan.scanner.run import run_scan


def _config(text: str) -> ScanConfig:
    raw = json.loads(text)
    for key in ("archive", "model", "out"):
        raw[key] = Path(raw[key])
    raw["extensions"] = tuple(raw["extensions"])
    return ScanConfig(**raw)


def _print(summary) -> None:
    print(json.dumps({**summary.as_dict(), "workers": summary.workers}), flush=True)


def main(argv: list[str]) -> None:
    mode, config = argv[0], _config(argv[1])
    if mode == "scan":
        worker_class = None
        if argv[2:4] and argv[2] == "--batch-delay":  # slow enough for the test to kill this driver mid-scan
            from tests.scanner.faults import faulty_worker

            worker_class = faulty_worker(batch_delay_s=float(argv[3]))
        _print(run_scan(config, worker_class=worker_class))
        return
    if mode == "two-node":
        from ray.cluster_utils import Cluster

        # Two raylets on one machine, one CPU each: a two-CPU-worker scan must use both nodes.
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            config.address = cluster.address  # joined by address, like `dfscan run --address`
            _print(run_scan(config))
        finally:
            cluster.shutdown()
        return
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
