"""The local Ray cluster of a run without --address (issue 11 item 7): it listens on loopback only,
starts no dashboard, and no process of it outlives its driver, however the driver ends. A cluster
the run only joined is left alone.

Each test runs its driver in a child process and finds the cluster's processes as that driver's
descendants, recorded while it lives: other sessions' Ray processes on the machine are never counted
or touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from tests.scanner.conftest import REPO, child_env

# A driver like `dfscan run`'s: Ray is imported before connect_ray, then an actor runs, so the raylet
# has started workers and agents. It answers "shutdown" on stdin with ray.shutdown().
DRIVER = """
import json, os, sys
import ray
from dfscan.scanner.workers import connect_ray

assert connect_ray(sys.argv[1] or None)

@ray.remote(num_cpus=0)
class Probe:
    def pid(self):
        return os.getpid()

actor_pid = ray.get(Probe.remote().pid.remote())
print(json.dumps({"driver": os.getpid(), "actor": actor_pid}), flush=True)
for line in sys.stdin:
    if line.strip() == "shutdown":
        ray.shutdown()
        print(json.dumps({"down": True}), flush=True)
"""
# A Ray that would not honour the local-only switch (faked: once started, it reports an outward node IP).
# The driver records its descendants while connect_ray runs, and reports the refusal and who is left.
REFUSING_DRIVER = """
import json, threading, time
import psutil, ray
from dfscan.scanner.workers import connect_ray

real_init = ray.init

def init_then_report_outward_ip(**kwargs):
    real_init(**kwargs)
    ray.util.get_node_ip_address = lambda: "192.0.2.7"

ray.init = init_then_report_outward_ip
seen, starting = {}, True  # process: its name

def record():
    while starting:
        for process in psutil.Process().children(recursive=True):
            try:
                seen[process] = process.name()  # the newest: a child just forked still has our name
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.1)

recorder = threading.Thread(target=record)
recorder.start()
try:
    connect_ray(None)
    error = None
except RuntimeError as exc:
    error = str(exc)
starting = False
recorder.join()

def alive(process):
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

deadline = time.monotonic() + 60
while (left := [p for p in seen if alive(p)]) and time.monotonic() < deadline:
    time.sleep(0.5)
print(json.dumps({"error": error, "initialized": ray.is_initialized(), "started": sorted(set(seen.values())),
                  "left": sorted(seen[p] for p in left)}), flush=True)
for process in left:
    process.kill()  # whatever the verdict, leave nothing on the machine
"""
DASHBOARD_PORT = 8265  # Ray's default for the dashboard's web UI
DASHBOARD_METRIC_PORT = 44227  # Ray's default for the dashboard head's Prometheus metrics
GONE_WITHIN_S = 60


def _start_driver(tmp_path, address: str = "") -> tuple[subprocess.Popen, dict]:
    stderr = open(tmp_path / "driver.err", "w")  # noqa: SIM115 - the child writes it while we wait
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, address], cwd=REPO, env=child_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
    stderr.close()
    line = driver.stdout.readline()
    assert line, f"the driver died: {(tmp_path / 'driver.err').read_text()[-2000:]}"
    return driver, json.loads(line)


def _cluster_of(driver: subprocess.Popen, ready: dict) -> list[psutil.Process]:
    """The driver's descendants: its cluster's processes (and the watchdog), recorded while it lives."""
    descendants = psutil.Process(driver.pid).children(recursive=True)
    names = {p.name() for p in descendants}
    # The agents are the raylet's children, the processes that used to stay behind: they must be seen.
    assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, names
    assert ready["actor"] in {p.pid for p in descendants}
    return descendants


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _left_after_waiting(processes: list[psutil.Process]) -> list[str]:
    """Poll until none of ``processes`` lives, for at most GONE_WITHIN_S; name the ones still alive."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.5)
    names = []
    for process in _alive(processes):
        with contextlib.suppress(psutil.NoSuchProcess):
            names.append(f"{process.pid} {process.name()}")
            process.kill()  # ours: leave nothing on the machine whatever the verdict
    return names


def _is_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _stop(driver: subprocess.Popen) -> None:
    if driver.poll() is None:
        driver.kill()
    driver.wait(30)


def test_local_cluster_listens_only_on_loopback_and_shuts_down_clean(tmp_path):
    driver, ready = _start_driver(tmp_path)
    cluster: list[psutil.Process] = []
    try:
        cluster = _cluster_of(driver, ready)
        pids = {driver.pid} | {p.pid for p in cluster}
        bound = [(c.laddr.ip, c.laddr.port, c.pid) for c in psutil.net_connections("inet") if c.pid in pids
                 and (c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr))]
        names = {pid: psutil.Process(pid).name() for _, _, pid in bound}
        assert set(names.values()) >= {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}
        assert [(ip, port, names[pid]) for ip, port, pid in bound if not _is_loopback(ip)] == []
        # No dashboard: Ray always starts its dashboard head, but without a web UI it serves only metrics.
        heads = {p.pid for p in cluster if any(arg.endswith("dashboard/dashboard.py") for arg in p.cmdline())}
        assert {port for _, port, pid in bound if pid in heads} <= {DASHBOARD_METRIC_PORT}
        assert [port for _, port, _ in bound if port == DASHBOARD_PORT] == []

        driver.stdin.write("shutdown\n")
        driver.stdin.flush()
        assert json.loads(driver.stdout.readline()) == {"down": True}
        # The driver still lives: ray.shutdown() itself, then the watchdog, must leave nothing behind.
        assert _left_after_waiting(cluster) == []
    finally:
        _stop(driver)
        _left_after_waiting(cluster)


def test_sigkilled_driver_leaves_no_process_behind(tmp_path):
    driver, ready = _start_driver(tmp_path)
    cluster: list[psutil.Process] = []
    try:
        cluster = _cluster_of(driver, ready)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        assert _left_after_waiting(cluster) == []
    finally:
        _stop(driver)
        _left_after_waiting(cluster)


def test_joined_cluster_outlives_its_sigkilled_driver(ray_cluster, tmp_path):
    import ray

    driver, _ = _start_driver(tmp_path, address=ray_cluster)
    try:
        assert psutil.Process(driver.pid).children(recursive=True) == []  # no cluster, no watchdog of its own
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        _stop(driver)
    assert ray.get(ray.remote(lambda: "alive").remote(), timeout=60) == "alive"


def test_loopback_switch_is_put_back_after_start():
    """Ray's local-only switch holds for the start of our cluster only: a later join of a real cluster
    from the same process must advertise a reachable IP again."""
    from ray._private import ray_constants

    from dfscan.scanner.ray_local import MARKER_ENV, _local_only

    before = (ray_constants.ENABLE_RAY_CLUSTER, dict(os.environ))
    with _local_only("m1"):
        assert ray_constants.ENABLE_RAY_CLUSTER is False
        assert (os.environ[MARKER_ENV], os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"]) == ("m1", "0")
    assert (ray_constants.ENABLE_RAY_CLUSTER, dict(os.environ)) == before


def test_cluster_not_on_loopback_is_refused_and_swept():
    done = subprocess.run([sys.executable, "-c", REFUSING_DRIVER], cwd=REPO, env=child_env(), capture_output=True,
                          text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["error"] == ("the local Ray cluster would listen on 192.0.2.7, not on loopback; "
                               "pass --address to use a cluster started on purpose")
    assert report["initialized"] is False
    assert {"gcs_server", "raylet"} <= set(report["started"])  # it did start, and then
    assert report["left"] == []
