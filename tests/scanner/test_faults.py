"""Crashes: a SIGKILLed driver, a killed actor, a file that kills every worker that reads it.
The guarantee asserted each time: every file has exactly one committed row."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from dfscan.scanner import sink, verdicts
from dfscan.scanner.run import run_scan
from tests.scanner.conftest import REPO, child_env, config_json, make_videos, rows_by_path, scan_config
from tests.scanner.faults import faulty_worker


def _committed_rows(out) -> int:
    try:
        return verdicts.open_dataset(out).count_rows()
    except Exception:  # noqa: BLE001 - a part may be renamed while we list: ask again later
        return -1


def test_driver_sigkilled_mid_scan_then_rerun(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(16)])
    config = scan_config(root, tiny_model, out, batch_size=2, commit_rows=2, workers=2, address=ray_cluster)
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.scanner.subprocess_scan", "scan", config_json(config), "--batch-delay", "1.0"],
        cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while _committed_rows(out) < 4 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert driver.poll() is None, "the driver finished before it could be killed"
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    before = rows_by_path(out)
    assert 4 <= sum(len(v) for v in before.values()) < 16  # killed mid-scan, with work committed
    assert not (out / "_SUCCESS").exists()

    summary = run_scan(scan_config(root, tiny_model, out, batch_size=2))  # the same command again
    after = rows_by_path(out)
    assert sorted(after) == names
    assert all(len(v) == 1 for v in after.values())  # nothing lost, nothing duplicated
    assert summary.skipped == len(before) and summary.scanned == 16 - len(before)


def test_actor_killed_mid_scan(ray_cluster, tiny_model, tmp_path):
    import ray

    root, out = tmp_path / "archive", tmp_path / "out"
    # Enough batches that the killed worker still has work in flight (each worker runs two at once).
    names = make_videos(root, [f"v{i:02d}.mp4" for i in range(20)])
    killed: list[str] = []
    earlier = set(ray.util.list_named_actors())  # workers of earlier tests may not be gone yet

    def killer():  # chaos: once work is flowing, kill one worker (Ray may restart it)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            workers = sorted(n for n in set(ray.util.list_named_actors()) - earlier
                             if n.startswith("dfscan-worker-"))
            if workers and _committed_rows(out) >= 2:
                try:
                    ray.kill(ray.get_actor(workers[0]), no_restart=False)
                    killed.append(workers[0])
                except ValueError:  # not registered (yet, or any more): look again
                    pass
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    summary = run_scan(scan_config(root, tiny_model, out, batch_size=2, commit_rows=2, workers=2),
                       worker_class=faulty_worker(batch_delay_s=0.5))
    thread.join(5)
    assert killed, "the killer never found a worker to kill"
    assert summary.worker_failures >= 1
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    assert summary.ok == 20


def test_file_that_always_crashes_its_worker(ray_cluster, tiny_model, tmp_path):
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, [f"v{i}.mp4" for i in range(5)] + ["v5_poison.mp4"])
    summary = run_scan(scan_config(root, tiny_model, out, batch_size=4, workers=2, max_actor_restarts=1),
                       worker_class=faulty_worker(crash_on="poison"))  # segfaults whenever it meets this file
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    (poison,) = rows["v5_poison.mp4"]
    assert (poison["status"], poison["error_class"]) == ("error", "DECODER_CRASH")
    assert "killed its worker" in poison["error_message"]
    assert all(rows[n][0]["status"] == "ok" for n in names if n != "v5_poison.mp4")  # batch-mates
    assert summary.errors_by_class == {"DECODER_CRASH": 1} and summary.ok == 5
    # Batch {v4, poison} failed, failed alone, was bisected; poison then failed alone twice.
    assert summary.worker_failures >= 4


def test_file_that_hangs_its_worker_gets_timeout(ray_cluster, tiny_model, tmp_path):
    """A decode that never returns: the driver kills the worker after batch_timeout_s, Ray restarts
    it, and the file is isolated like a crashing one, ending as one TIMEOUT row."""
    root, out = tmp_path / "archive", tmp_path / "out"
    names = make_videos(root, ["a.mp4", "b_stuck.mp4", "c.mp4"])
    summary = run_scan(scan_config(root, tiny_model, out, batch_size=1, workers=2, batch_timeout_s=5.0,
                                   max_actor_restarts=4), worker_class=faulty_worker(hang_on="stuck"))
    rows = rows_by_path(out)
    assert sorted(rows) == names and all(len(v) == 1 for v in rows.values())
    (stuck,) = rows["b_stuck.mp4"]
    assert (stuck["status"], stuck["error_class"]) == ("error", "TIMEOUT")
    assert "alone took longer than 5 s, 2 times" in stuck["error_message"]
    assert rows["a.mp4"][0]["status"] == rows["c.mp4"][0]["status"] == "ok"
    assert summary.errors_by_class == {"TIMEOUT": 1} and summary.ok == 2
    # Alone from the start (batch size 1): killed once, then twice more while isolated.
    assert summary.worker_failures >= 3
