"""Several GPUs without GPUs (logical GPUs), and several machines on one (a two-node Cluster)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scanner.run import run_scan
from tests.scanner.conftest import REPO, child_env, config_json, make_videos, rows_by_path, scan_config


@pytest.mark.timeout(300)
def test_logical_gpus_each_actor_gets_its_own_device(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(12)])
    # gpus=None: "every visible GPU", which on the session cluster is 2 logical GPUs.
    summary = run_scan(scan_config(root, tiny_model, out, gpus=None, batch_size=2))
    labels = sorted(summary.workers)
    assert [label.rsplit("/", 1)[1] for label in labels] == ["gpu0", "gpu1"]  # Ray's CUDA_VISIBLE_DEVICES
    assert all(count > 0 for count in summary.workers.values())  # both share the work
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    # No NVIDIA driver here: the actors fell back to CPU decoding and CPU inference.
    assert {v[0]["decoder"] for v in rows.values()} == {"pyav"}
    assert {v[0]["status"] for v in rows.values()} == {"ok"}


@pytest.mark.timeout(300)
def test_two_node_cluster_joined_by_address(tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(12)])
    config = scan_config(root, tiny_model, out, batch_size=2, workers=2)
    done = subprocess.run([sys.executable, "-m", "tests.scanner.subprocess_scan", "two-node", config_json(config)],
                          cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    nodes = {label.split("/")[0] for label in summary["workers"]}  # host:node_id
    assert len(nodes) == 2 and all(count > 0 for count in summary["workers"].values())  # both nodes worked
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    assert summary["scanned"] == summary["ok"] == 12


@pytest.mark.timeout(300)
def test_local_cluster_started_and_shut_down(tiny_model, tmp_path):
    """Without --address or RAY_ADDRESS, run_scan starts a local cluster and shuts it down again."""
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, ["one.mp4", "two.mkv.mp4"])
    config = scan_config(root, tiny_model, out, gpus=None, workers=None)  # defaults: from the machine
    env = child_env()
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "tests.scanner.subprocess_scan", "scan", config_json(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["scanned"] == summary["ok"] == 2
    assert sorted(rows_by_path(out)) == names
