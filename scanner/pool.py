"""The scan's Ray actors: start them, know which are ready, probe the ones Ray is restarting, kill a
hung one, replace one Ray gave up on. What runs on them and what a failure means is not decided
here (``scanner.policy``, ``scanner.run``).

Readiness is a ping (``ScanWorker.info``) that returns only once the actor has loaded and compiled
its model. A killed process can still answer a ping sent before it died; its pid tells it apart
from its successor's answer.
"""

from __future__ import annotations

import time
from typing import Callable

RESTART_PROBE_S = 0.5  # how often to ask again whether an actor Ray is restarting is back


class PoolFailed(RuntimeError):
    """Workers cannot start, or keep dying."""


class ActorPool:
    def __init__(self, start_actor: Callable[[str], object], run_id: str):
        """``start_actor(name)`` starts one actor and returns its handle."""
        self._start_actor = start_actor
        self.run_id = run_id
        self.actors: dict[int, object] = {}  # slot -> handle
        self.ready: set[int] = set()
        self.pings: dict[object, int] = {}  # readiness ObjectRef -> slot
        self.ping_due: dict[int, float] = {}  # slot -> when to probe again an actor Ray is restarting
        self.pids: dict[int, int] = {}  # slot -> pid of the process that last answered its ping
        self.killed_pids: dict[int, int] = {}  # slot -> pid we killed: its late answers do not count
        self.spawned = 0

    def spawn(self, slot: int) -> None:
        name = f"dfscan-worker-{self.run_id}-{self.spawned}"  # named, so chaos tests can find it
        handle = self._start_actor(name)
        self.spawned += 1
        self.actors[slot] = handle
        self.ready.discard(slot)
        self.pings[handle.info.remote()] = slot

    def start(self, count: int) -> dict:
        """Start ``count`` actors and wait until each has loaded and warmed its model; returns the
        first one's info."""
        import ray

        for slot in range(count):
            self.spawn(slot)
        infos = {}
        for ref, slot in list(self.pings.items()):
            try:
                infos[slot] = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise PoolFailed(f"a scan worker failed to start: {one_line(exc)}") from None
            self.pids[slot] = infos[slot]["pid"]
            self.ready.add(slot)
        self.pings.clear()
        return infos[0]

    def stop(self) -> None:
        import ray

        for handle in self.actors.values():
            ray.kill(handle, no_restart=True)
        self.actors.clear()

    def kill_for_restart(self, slot: int) -> None:
        """Kill a hung actor; Ray restarts it, and its batches come back as actor failures."""
        import ray

        if slot in self.pids:
            self.killed_pids[slot] = self.pids[slot]
        ray.kill(self.actors[slot], no_restart=False)
        self.mark_recovering(slot)

    def mark_recovering(self, slot: int) -> None:
        """Stop dispatching to the actor; its readiness probe returns once Ray restarted it."""
        if slot in self.ready:
            self.ready.discard(slot)
            self.ping_due[slot] = time.monotonic()

    def send_due_pings(self) -> None:
        now = time.monotonic()
        for slot, due in list(self.ping_due.items()):
            if now >= due:
                del self.ping_due[slot]
                self.pings[self.actors[slot].info.remote()] = slot

    def on_ping(self, ref) -> BaseException | None:
        """Take the answer to a readiness ping. Returns Ray's error when Ray gave up on the actor
        (its restarts are spent, or its __init__ failed) and it was replaced by a fresh one: a
        failure the caller counts. None otherwise."""
        import ray

        slot = self.pings.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.ActorUnavailableError:
            self.ping_due[slot] = time.monotonic() + RESTART_PROBE_S  # Ray is restarting it
            return None
        except ray.exceptions.RayError as exc:
            self.spawn(slot)
            return exc
        if self.killed_pids.get(slot) == info.get("pid"):
            # The process we killed answered before it died: ask its successor later.
            self.ping_due[slot] = time.monotonic() + RESTART_PROBE_S
            return None
        self.pids[slot] = info.get("pid")
        self.ready.add(slot)
        return None

    def any_alive(self) -> bool:
        return bool(self.ready or self.ping_due)


def one_line(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) if exc is not None else "unknown"
    return f"{type(exc).__name__}: {text}"[:300]
