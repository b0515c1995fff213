"""The local Ray cluster of one `dfscan run` without --address: loopback only, and it dies with its driver.

Started by a plain ``ray.init()`` on Linux, Ray binds its gRPC servers, workers and agents to every
interface, and a SIGKILLed driver leaves ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` running:
the kernel kills the driver's own children (Ray sets PR_SET_PDEATHSIG on them), but the agents are the
raylet's children, and they log "Raylet is dead! Exiting" and then hang, still listening.

- Loopback: Ray has a local-only mode, the one it uses on laptops (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
  false): the node's IP is then 127.0.0.1 (or ::1) and every server binds to it. Ray reads that setting
  when it is first imported, which in `dfscan run` is before we get here, so the imported constant is
  set as well, for the length of ``ray.init`` only: a later join of a real cluster from this process
  must still advertise a reachable IP. The IP is checked afterwards; a Ray that ignores the switch
  is shut down and refused rather than left listening on every interface.
- Fate: a watchdog process holds the read end of a pipe whose only writer is the driver. EOF means
  the driver is gone, however it died (the kernel closes the pipe even on SIGKILL); the watchdog then
  kills every process of this cluster. Those carry a marker in their environment, set while Ray
  starts and inherited by all it spawns, which no other cluster, of this user or another, carries;
  the processes that hide it (see ``watch``) are recorded by lineage while the driver lives. The
  watchdog also stops, after the same sweep, once the cluster's GCS is gone: the driver shut the
  cluster down itself. PR_SET_PDEATHSIG could not do this: it binds a child to its own parent, and
  the agents' parent, the raylet, is not ours to start.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import select
import subprocess
import sys
import uuid

MARKER_ENV = "DFSCAN_LOCAL_RAY"  # its value names one local cluster
_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
_POLL_S = 1.0
_STARTING_POLL_S = 0.2
_KILL_ROUNDS = 5  # a raylet may start a worker while we kill: look again until nothing is left

# The write ends of the watchdogs' pipes. Closing one (or losing it to the garbage collector) tells
# its watchdog the driver is gone, so they live as long as this process.
_watchdogs: list[subprocess.Popen] = []


def start_local_ray(**init_kwargs) -> None:
    """``ray.init(**init_kwargs)`` for a new local cluster bound to loopback, with its watchdog."""
    import ray

    _watchdogs[:] = [w for w in _watchdogs if w.poll() is None]  # reap those whose cluster is gone
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != MARKER_ENV}
    watchdog = subprocess.Popen([sys.executable, "-m", "dfscan.scanner.ray_local", marker, str(os.getpid())],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env, start_new_session=True)  # no Ctrl-C from the terminal: it must sweep
    _watchdogs.append(watchdog)
    try:
        with _local_only(marker), _without_token_notice():
            ray.init(**init_kwargs)
        node_ip = ray.util.get_node_ip_address()
        if not is_loopback(node_ip):
            raise RuntimeError(f"the local Ray cluster would listen on {node_ip}, not on loopback; "
                               "pass --address to use a cluster started on purpose")
        if watchdog.poll() is not None:  # e.g. scanner not importable from its working directory
            raise RuntimeError(f"the local Ray cluster's watchdog exited (status {watchdog.returncode})")
        watchdog.stdin.write(b"started\n")  # record the cluster now rather than at its next look
        watchdog.stdin.flush()
    except BaseException:
        if ray.is_initialized():
            ray.shutdown()
        with contextlib.suppress(OSError):  # a watchdog already gone leaves a broken pipe
            watchdog.stdin.close()  # and the watchdog sweeps whatever is left
        raise


@contextlib.contextmanager
def _local_only(marker: str):
    from ray._private import ray_constants

    saved_env = {name: os.environ.get(name) for name in (MARKER_ENV, _LOCAL_ONLY_ENV)}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[MARKER_ENV], os.environ[_LOCAL_ONLY_ENV] = marker, "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


@contextlib.contextmanager
def _without_token_notice():
    """Ray (2.60) turns token authentication on for a new local cluster (good: nothing else on the machine
    can submit work to it) and says so at WARNING on every start, a line in every night's log that asks
    nothing of anyone. Unless --verbose, that one notice is dropped; its warning that authentication is
    *disabled* is kept."""
    from dfscan.kernels.quiet import verbose_requested

    if verbose_requested():
        yield
        return
    logger = logging.getLogger(_AUTH_LOGGER)
    notice = _DropTokenNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name
        return host == "localhost"
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, an IPv6 socket bound to 127.0.0.1
    return (mapped or address).is_loopback


# --- the watchdog process ----------------------------------------------------------------------------
def watch(marker: str, driver_pid: int, pipe_fd: int) -> None:
    """Return once this cluster's processes are gone: after the driver died (EOF on the pipe), or after
    the cluster's GCS exited (the driver shut it down); either way, kill what is left.

    The marker alone cannot find every process: the agents rename themselves with setproctitle, which
    wipes their environment as /proc shows it. So the processes are also recorded while their
    lineage is visible: the driver's children that carry the marker (GCS, raylet, ...) and everything
    below them, the agents included, before the raylet dies and they are reparented."""
    import psutil

    spare = {os.getpid(), driver_pid}
    seen: set = set()  # psutil.Process compares by pid and start time: a reused pid is another process
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:  # it died before we started: only the marker is left to go by
        kill_cluster(marker, seen, spare)
        return
    gcs, started = None, False
    while True:
        # Faster while Ray starts: it narrows the time in which a killed driver leaves an agent unseen.
        readable, _, _ = select.select([pipe_fd], [], [], _POLL_S if started else _STARTING_POLL_S)
        if readable:
            if not os.read(pipe_fd, 4096):
                break  # EOF: the driver is gone
            started = True
        if _alive(driver):
            children = _children_by_parent()
            seen |= _below(children, [c for c in children.get(driver_pid, ()) if _has_marker(c, marker)])
        if gcs is None:
            gcs = next((p for p in seen if _name(p) == "gcs_server"), None)
        elif not _alive(gcs):
            break
    kill_cluster(marker, seen, spare)


def kill_cluster(marker: str, seen: set, spare: set[int]) -> None:
    """Kill the processes ``seen``, any other live process carrying ``marker``, and all their descendants."""
    import psutil

    for _ in range(_KILL_ROUNDS):
        children = _children_by_parent()
        marked = [p for p in psutil.process_iter() if p.pid not in spare and _has_marker(p, marker)]
        roots = [p for p in [*seen, *marked] if _alive(p)]  # a dead one's pid may be another's now
        targets = [p for p in _below(children, roots) if p.pid not in spare and _alive(p)]
        if not targets:
            return
        for process in targets:
            with contextlib.suppress(psutil.Error):
                process.kill()  # the driver is gone or done: nothing is left to shut down gracefully for
        psutil.wait_procs(targets, timeout=5)


def _children_by_parent() -> dict[int, list]:
    import psutil

    children: dict[int, list] = {}
    for process in psutil.process_iter(["ppid"]):
        children.setdefault(process.info["ppid"], []).append(process)
    return children


def _below(children: dict[int, list], roots) -> set:
    """``roots`` and all their descendants."""
    found, stack = set(), list(roots)
    while stack:
        process = stack.pop()
        if process not in found:
            found.add(process)
            stack.extend(children.get(process.pid, ()))
    return found


def _has_marker(process, marker: str) -> bool:
    import psutil

    try:
        return process.environ().get(MARKER_ENV) == marker
    except (psutil.Error, OSError):  # gone meanwhile, a zombie, or another user's
        return False


def _name(process) -> str:
    import psutil

    try:
        return process.name()
    except psutil.Error:
        return ""


def _alive(process) -> bool:
    import psutil

    try:
        # is_running() also tells a reused pid apart; a zombie is dead, only not yet reaped
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


if __name__ == "__main__":
    watch(sys.argv[1], int(sys.argv[2]), sys.stdin.fileno())
