"""The device check's end-to-end stage: file to p_fake (probe, decode, resize, model), either in
reader threads of this process or in several processes sharing one GPU.

Why processes: on an H200, nvdec's keyframe rate end to end stopped at 29 videos/s with NVDEC about
14 % busy, and 8 reader threads ran slower than 4: the host side of one process, under Python's lock,
is the bound (docs/performance.md). ``dfscan run --workers-per-gpu N`` answers that with N scan
workers per GPU; ``ProcessFleet`` measures the same shape here, without Ray (the device has none):
P processes, each with its own reader threads and its own compiled model, fed shares of one list.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections import Counter

import numpy as np

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.scanner.workers import SHARED_GPU_ENV

POLL_S = 1.0  # how often the driver looks whether a silent process has died


class CheckFailed(Exception):
    """A check of the device run did not hold; the message says which and by how much."""


def has_gpu() -> bool:
    from dfscan.kernels.decode import gpu_count

    return gpu_count() > 0


def build_check_model(arch: str, frames: int, size: int):
    """An untrained model of ``arch`` (no backbone weights: the rate does not depend on them), in
    mixed bf16 on a GPU as a scan would run it."""
    import keras

    from dfscan.training.models import ModelConfig, build_model

    if has_gpu():
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        return build_model(ModelConfig(arch=arch, frames=frames, size=size, backbone_weights="none"))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def run_threads(work, readers: list[ClipReader], shares: list[list[str]]) -> float:
    """``work(reader, share)`` on one thread per reader, all at once; the wall seconds they took."""
    threads = [threading.Thread(target=work, args=(r, s)) for r, s in zip(readers, shares)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _score_shares(readers: list[ClipReader], shares: list[list[str]], predictor, batch: int) -> dict:
    """Each reader reads its share in its own thread, a fixed-shape batch at a time; predictions take
    turns on the one compiled model. Returns what was decoded, by whom, and the scores."""
    lock = threading.Lock()
    used: Counter = Counter()
    scored: list[float] = []
    errors: list[str] = []
    fallbacks: list[str] = []  # why a file left the decoder under test: the check's failure names it
    decoded_before = sum(r.times.frames_decoded for r in readers)
    times_before = [(r.times.probe, r.times.decode) for r in readers]

    def work(reader: ClipReader, share: list[str]) -> None:
        try:
            for start in range(0, len(share), batch):
                clip_batch = reader.read_batch(share[start:start + batch], batch)
                with lock:
                    scores = predictor.predict(clip_batch.frames)  # (batch,) float32
                used.update(c.decoder if c.ok else "failed" for c in clip_batch.clips)
                fallbacks.extend(f"{c.path}: {c.fallback_from} failed it: {c.fallback_reason}"
                                 for c in clip_batch.clips if c.fallback_from)
                errors.extend(f"{c.path}: {c.error}" for c in clip_batch.clips if not c.ok)
                scored.extend(scores[:len(clip_batch.clips)].tolist())
        except Exception as exc:  # noqa: BLE001 - reported as this stage's failure, not lost with the thread
            errors.append(f"{type(exc).__name__}: {exc}")

    seconds = run_threads(work, readers, shares)
    return {"seconds": seconds, "decoders_used": dict(used), "scores_finite": bool(np.isfinite(scored).all()),
            "errors": errors, "fallbacks": fallbacks,
            "frames_decoded": sum(r.times.frames_decoded for r in readers) - decoded_before,
            "probe_s": sum(r.times.probe - b[0] for r, b in zip(readers, times_before)),
            "decode_s": sum(r.times.decode - b[1] for r, b in zip(readers, times_before))}


def _ready_predictor(spec: ClipSpec, arch: str, batch: int):
    from dfscan.kernels.predict import CompiledPredictor

    model = build_check_model(arch, spec.frames, spec.size)
    predictor = CompiledPredictor(model, batch_size=batch, frames=spec.frames, size=spec.size)
    predictor.warm_up()
    return predictor


def end_to_end(paths: list[str], spec: ClipSpec, arch: str, pipelines: int, batch: int, gpu: bool) -> dict:
    """File to p_fake in this process: ``pipelines`` readers in threads, one compiled model."""
    predictor = _ready_predictor(spec, arch, batch)
    readers = [ClipReader(spec, gpu=gpu, dali_batch=batch) for _ in range(pipelines)]
    for reader in readers:
        reader.read(paths[:1])
    result = _score_shares(readers, [paths[i::pipelines] for i in range(pipelines)], predictor, batch)
    if result["errors"] or result["decoders_used"].get(spec.decoder, 0) != len(paths) or not result["scores_finite"]:
        raise CheckFailed(f"end to end on {spec.decoder}: decoders used {result['decoders_used']}, "
                          f"errors {result['errors'][:2]}, fallbacks {result['fallbacks'][:2]}")
    return {"videos_per_s": len(paths) / result["seconds"], "seconds": result["seconds"],
            "decoders_used": result["decoders_used"]}


def _process_main(index: int, spec: ClipSpec, arch: str, threads: int, batch: int, gpu: bool, warm_up_path: str,
                  commands, results) -> None:
    """One fleet process: build once, then score each share it is sent until it is sent None."""
    for key, value in SHARED_GPU_ENV.items():
        os.environ.setdefault(key, value)  # before JAX or TensorFlow is imported
    try:
        started = time.perf_counter()
        predictor = _ready_predictor(spec, arch, batch)
        readers = [ClipReader(spec, gpu=gpu, dali_batch=batch) for _ in range(threads)]
        for reader in readers:
            reader.read([warm_up_path])
        results.put(("ready", index, {"startup_s": time.perf_counter() - started, "pid": os.getpid()}))
        while (share := commands.get()) is not None:
            results.put(("done", index, _score_shares(readers, [share[i::threads] for i in range(threads)],
                                                      predictor, batch)))
    except Exception as exc:  # noqa: BLE001 - the driver turns it into this stage's failure
        results.put(("error", index, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"))


class ProcessFleet:
    """``processes`` worker processes on one device, started once (each builds and compiles its model
    and its readers) and reused for every process count, so a run pays the start-up once.

    Spawned, not forked: CUDA, JAX and DALI do not survive a fork of an initialised parent."""

    def __init__(self, spec: ClipSpec, arch: str, processes: int, threads: int, batch: int, gpu: bool,
                 warm_up_path: str, timeout_s: float = 300.0):
        self.spec, self.arch, self.threads, self.batch, self.gpu = spec, arch, threads, batch, gpu
        self.size, self.warm_up_path, self.timeout_s = processes, warm_up_path, timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._processes: list = []
        self._commands: list = []
        self._results = None
        self.startup: dict[int, dict] | None = None
        self._start_error: str | None = None

    def __enter__(self) -> "ProcessFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        if self._start_error:
            raise CheckFailed(self._start_error)
        if self._processes:
            return
        self._results = self._context.Queue()
        for index in range(self.size):
            commands = self._context.Queue()
            process = self._context.Process(
                target=_process_main, daemon=True, name=f"dfscan-e2e-{index}",
                args=(index, self.spec, self.arch, self.threads, self.batch, self.gpu, self.warm_up_path,
                      commands, self._results))
            process.start()
            self._processes.append(process)
            self._commands.append(commands)
        try:
            self.startup = self._collect("ready", range(self.size))
        except CheckFailed as exc:
            self._fail(f"the end-to-end processes did not start: {exc}")

    def _fail(self, message: str) -> None:
        """Stop the fleet for good: processes still busy with a failed stage's shares would answer
        the next stage and skew its time. Later stages fail with this message."""
        self._start_error = message
        self.close()
        raise CheckFailed(message)

    def _collect(self, kind: str, indices) -> dict[int, dict]:
        """One ``kind`` answer from each process in ``indices``; a process that reports an error, dies
        or stays silent past the timeout fails the stage."""
        waiting, answers = set(indices), {}
        deadline = time.monotonic() + self.timeout_s
        while waiting:
            try:
                what, index, payload = self._results.get(timeout=POLL_S)
            except queue.Empty:
                dead = [i for i in sorted(waiting) if self._processes[i].exitcode is not None]
                if dead:
                    raise CheckFailed(f"process {dead[0]} exited with code "
                                      f"{self._processes[dead[0]].exitcode}") from None
                if time.monotonic() > deadline:
                    raise CheckFailed(f"processes {sorted(waiting)} gave no '{kind}' answer within "
                                      f"{self.timeout_s:.0f} s") from None
                continue
            if what == "error":
                raise CheckFailed(f"process {index}: {payload}")
            if what == kind and index in waiting:
                waiting.discard(index)
                answers[index] = payload
        return answers

    def rate(self, paths: list[str], processes: int) -> dict:
        """File to p_fake for ``paths``, shared out over the first ``processes`` processes at once.
        ``videos_per_s`` is the total over the wall time; each process's own rate is in ``per_process``."""
        if not 1 <= processes <= self.size:
            raise ValueError(f"{processes} processes asked for; the fleet has {self.size}")
        self._start()
        shares = [paths[i::processes] for i in range(processes)]
        started = time.perf_counter()
        for index, share in enumerate(shares):
            self._commands[index].put(share)
        try:
            done = self._collect("done", range(processes))
        except CheckFailed as exc:
            self._fail(f"end to end on {self.spec.decoder}, {processes} processes: {exc}")
        seconds = time.perf_counter() - started
        used: Counter = Counter()
        per_process = {}
        for index, share in enumerate(shares):
            result = done[index]
            used.update(result["decoders_used"])
            if (result["errors"] or result["decoders_used"].get(self.spec.decoder, 0) != len(share)
                    or not result["scores_finite"]):
                raise CheckFailed(f"end to end on {self.spec.decoder}, process {index}: decoders used "
                                  f"{result['decoders_used']}, errors {result['errors'][:2]}, "
                                  f"fallbacks {result['fallbacks'][:2]}")
            per_process[f"process {index}"] = {
                "videos_per_s": len(share) / result["seconds"], "seconds": result["seconds"], "videos": len(share),
                "frames_decoded_per_s": result["frames_decoded"] / result["seconds"],
                "probe_s": result["probe_s"], "decode_s": result["decode_s"],
                "decoders_used": result["decoders_used"], "startup_s": self.startup[index]["startup_s"]}
        return {"videos_per_s": len(paths) / seconds, "seconds": seconds, "videos": len(paths),
                "processes": processes, "threads_per_process": self.threads,
                "frames_decoded_per_s": sum(done[i]["frames_decoded"] for i in done) / seconds,
                "probe_s": sum(done[i]["probe_s"] for i in done), "decode_s": sum(done[i]["decode_s"] for i in done),
                "sum_of_process_rates": sum(p["videos_per_s"] for p in per_process.values()),
                "decoders_used": dict(used), "per_process": per_process}

    def close(self) -> None:
        for commands, process in zip(self._commands, self._processes):
            if process.is_alive():
                commands.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():  # stuck in a decoder or a CUDA call: it must not outlive the run
                process.kill()
                process.join(timeout=5)
        self._processes, self._commands = [], []
