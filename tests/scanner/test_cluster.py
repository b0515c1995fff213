"""Several GPUs without GPUs (logical GPUs), and several machines on one (a two-node Cluster)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dfscan.scanner import workers
from dfscan.cli import app
from dfscan.scanner.config import ScanConfig
from dfscan.scanner.run import run_scan
from dfscan.scanner.workers import WorkerPlan, plan_workers
from tests.scanner.conftest import REPO, child_env, config_json, make_videos, rows_by_path, scan_config


def test_plan_workers_several_per_gpu():
    """N workers per GPU: N actors on each, each asking for 1/N of one, so Ray packs N on a device."""
    assert plan_workers(None, None, {"CPU": 16, "GPU": 2}, workers_per_gpu=4) == WorkerPlan(8, 0.25, 1.0)
    assert plan_workers(2, None, {"CPU": 2, "GPU": 2}, workers_per_gpu=2) == WorkerPlan(4, 0.5, 0.5)
    assert plan_workers(1, None, {"CPU": 16, "GPU": 4}, workers_per_gpu=1) == WorkerPlan(1, 1.0, 1.0)
    # CPU workers do not multiply: --workers says how many.
    assert plan_workers(0, 3, {"CPU": 16, "GPU": 4}, workers_per_gpu=4) == WorkerPlan(3, 0.0, 1.0)


def test_workers_per_gpu_defaults_to_what_the_decoder_was_measured_to_need():
    """Unasked, four scan workers per GPU (auto, nvdec), one for dali-gpu, and at most one per two of
    each GPU's cores; an explicit --workers-per-gpu is taken as it is."""
    h200 = {"CPU": 16, "GPU": 1}
    assert [plan_workers(None, None, h200, None, d) for d in ("auto", "nvdec", "dali-gpu")] == [
        WorkerPlan(4, 0.25, 1.0), WorkerPlan(4, 0.25, 1.0), WorkerPlan(1, 1.0, 1.0)]
    assert plan_workers(None, None, {"CPU": 32, "GPU": 4}) == WorkerPlan(16, 0.25, 1.0)
    assert plan_workers(None, None, {"CPU": 4, "GPU": 1}) == WorkerPlan(2, 0.5, 1.0)
    assert plan_workers(None, None, {"CPU": 2, "GPU": 2}) == WorkerPlan(2, 1.0, 1.0)
    assert plan_workers(None, None, {"CPU": 2, "GPU": 2}, 3, "dali-gpu") == WorkerPlan(6, 1 / 3, 1 / 3)


@pytest.mark.parametrize("loads, expected", [(True, "nvdec"), (False, "dali-gpu")])
def test_auto_plans_for_nvdec_only_where_pynvvideocodec_loads(monkeypatch, loads, expected):
    from dfscan.kernels.decode import nvdec

    monkeypatch.setattr(nvdec, "nvdec_available", lambda: loads)
    assert workers.gpu_decoder("auto") == expected
    assert [workers.gpu_decoder(d) for d in ("nvdec", "dali-gpu", "pyav")] == ["nvdec", "dali-gpu", "pyav"]


@pytest.mark.parametrize("value", [0, 9])
def test_workers_per_gpu_out_of_range_is_a_usage_error(tmp_path, value):
    with pytest.raises(ValueError, match=f"--workers-per-gpu must be between 1 and 8, got {value}"):
        ScanConfig(archive=tmp_path, model=tmp_path / "m.keras", out=tmp_path / "out", workers_per_gpu=value)
    result = CliRunner().invoke(app, ["run", str(tmp_path), "--model", str(tmp_path / "m.keras"),
                                      "--out", str(tmp_path / "out"), "--workers-per-gpu", str(value)])
    assert result.exit_code == 2
    assert result.stderr == f"dfscan: error: --workers-per-gpu must be between 1 and 8, got {value}\n"


def test_logical_gpus_each_actor_gets_its_own_device(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(12)])
    # gpus=None: "every visible GPU", which on the session cluster is 2 logical GPUs.
    summary = run_scan(scan_config(root, tiny_model, out, gpus=None, batch_size=2))
    labels = sorted(summary.workers)
    assert [label.rsplit("/", 1)[1] for label in labels] == ["gpu0", "gpu1"]  # Ray's CUDA_VISIBLE_DEVICES
    # Unasked, workers per GPU follow the cores: 2 cores for 2 GPUs is one each, and the manifest says so.
    assert json.loads(next((out / "_runs").glob("*.json")).read_text())["config"]["workers_per_gpu"] == 1
    assert all(count > 0 for count in summary.workers.values())  # both share the work
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    # No NVIDIA driver here: the actors fell back to CPU decoding and CPU inference.
    assert {v[0]["decoder"] for v in rows.values()} == {"pyav"}
    assert {v[0]["status"] for v in rows.values()} == {"ok"}


def test_two_workers_per_logical_gpu(ray_cluster, tiny_model, tmp_path, monkeypatch):
    """`dfscan run --gpus 2 --workers-per-gpu 2`: four actors, two on each logical GPU, and every file
    scanned exactly once."""

    class WorkerTellingItsProcess(workers.ScanWorker):  # pickled by value: Ray's workers run it as is
        def scan(self, paths: list[str]) -> dict:
            result = super().scan(paths)
            for row in result["rows"]:
                row["worker"] += f"#pid{os.getpid()}"
            return result

    monkeypatch.setattr(workers, "ScanWorker", WorkerTellingItsProcess)  # start_actor's default class
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(10)])
    # One batch in flight per worker: the first four batches go one to each of the four ready actors.
    result = CliRunner().invoke(app, ["run", str(root), "--model", str(tiny_model), "--out", str(out), "--gpus", "2",
                                      "--workers-per-gpu", "2", "--batch-size", "2", "--in-flight", "1", "--json"])
    assert result.exit_code == 0, result.output
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())  # nothing lost or duplicated
    processes = {row["worker"].rsplit("/", 1)[1] for (row,) in rows.values()}  # "gpu0#pid123"
    assert len(processes) == 4
    assert sorted(p.split("#")[0] for p in processes) == ["gpu0", "gpu0", "gpu1", "gpu1"]
    assert {row["status"] for (row,) in rows.values()} == {"ok"}
    (manifest,) = (out / "_runs").glob("*.json")
    assert json.loads(manifest.read_text())["config"]["workers_per_gpu"] == 2


def test_two_node_cluster_joined_by_address(tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(12)])
    config = scan_config(root, tiny_model, out, batch_size=2, workers=2)
    done = subprocess.run([sys.executable, "-m", "tests.scanner.subprocess_scan", "two-node", config_json(config)],
                          cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    nodes = {label.split("/")[0] for label in summary["workers"]}  # host:node_id
    assert len(nodes) == 2 and all(count > 0 for count in summary["workers"].values())  # both nodes worked
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    assert summary["scanned"] == summary["ok"] == 12


def test_local_cluster_started_and_shut_down(tiny_model, tmp_path):
    """Without --address or RAY_ADDRESS, run_scan starts a local cluster and shuts it down again."""
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, ["one.mp4", "two.mkv.mp4"])
    config = scan_config(root, tiny_model, out, gpus=None, workers=None)  # defaults: from the machine
    env = child_env()
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "tests.scanner.subprocess_scan", "scan", config_json(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["scanned"] == summary["ok"] == 2
    assert sorted(rows_by_path(out)) == names
