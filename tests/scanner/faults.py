"""Faults injected from the tests, never from production code: a ScanWorker subclass that sleeps per
batch, hangs, or crashes like a native decoder on chosen files. ``run_scan(config, worker_class=...)``
runs it in place of the real worker.

The class is made per test and pickled by value (Ray ships it to the worker processes, which cannot
import this test module)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import cloudpickle

from dfscan.scanner.workers import ScanWorker


def faulty_worker(batch_delay_s: float = 0.0, hang_on: str | None = None, crash_on: str | None = None) -> type:
    """A ScanWorker that sleeps ``batch_delay_s`` per batch (a scan slow enough to kill), never returns
    from a batch with ``hang_on`` in a path (a decoder stuck in a read), and dies of SIGSEGV on a batch
    with ``crash_on`` in a path (a native decoder crash)."""

    class FaultyWorker(ScanWorker):
        def scan(self, paths: list[str]) -> dict:
            if batch_delay_s:
                time.sleep(batch_delay_s)
            if hang_on and any(hang_on in p for p in paths):
                threading.Event().wait()
            if crash_on and any(crash_on in p for p in paths):
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGSEGV)
                # The signal may land on another thread of this threaded actor; like a real crash inside
                # the decoder, this batch must never return a result.
                threading.Event().wait()
            return super().scan(paths)

    return FaultyWorker


cloudpickle.register_pickle_by_value(sys.modules[__name__])
