"""The scan worker: one per GPU (or a few per CPU node), turning batches of paths into verdict rows.

The class is plain Python; ``scanner.run`` wraps it with ``ray.remote`` and the resources it needs
(``num_gpus=1`` on GPUs: Ray picks the device and sets CUDA_VISIBLE_DEVICES, we never choose ids).
Everything expensive happens once in ``__init__``: the model is loaded, the ClipReader (and so its
DALI pipelines) is built, and the compiled predictor is warmed up. Workers read the files
themselves: only relative paths come in and small rows go out.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import time
from pathlib import Path

from dfscan.kernels.artifact import ModelRecord
from dfscan.kernels.errors import is_device_error
from dfscan.kernels.scope import ClipFacts, scope_rule
from dfscan.scanner import verdicts
from dfscan.scanner.config import default_workers_per_gpu
from dfscan.scanner.ray_local import start_local_ray

def _device_label() -> tuple[str, bool]:
    """(label for the `worker` column, whether a real GPU may be used).

    Ray sets CUDA_VISIBLE_DEVICES for an actor with num_gpus=1. On a cluster started with logical
    GPUs but no NVIDIA driver (the CI machine), that id points at nothing: we keep the id for the
    label and hide it from TensorFlow and DALI, so both fall back to the CPU.
    """
    from dfscan.kernels.decode import gpu_count

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not visible:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU worker: keep TF off any GPU of the node
        return "cpu", False
    real = gpu_count() > 0
    if not real:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    return f"gpu{visible}", real


class ScanWorker:
    def __init__(self, record: ModelRecord, archive: str, batch_size: int, decoder: str = "auto"):
        """``record``: the model as the driver decided it (``kernels.artifact.decide_model``: its file and
        sha256, card, sampling, threshold and band), the same for every worker of the run; the worker only
        loads it, refusing a file whose sha256 is not the record's."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        device, real_gpu = _device_label()  # before TF is imported: it reads CUDA_VISIBLE_DEVICES once
        from dfscan.kernels.clips import FACE_CROP, ClipReader, ClipSpec
        from dfscan.kernels.predict import load_decided

        node = ""
        try:
            import ray

            node = ":" + ray.get_runtime_context().get_node_id()[:8]
        except Exception:  # noqa: BLE001 - outside Ray (unit tests) there is no node id
            pass
        self.label = f"{socket.gethostname()}{node}/{device}"
        self.visible_devices = device
        self.archive = Path(archive)
        self.batch_size = int(batch_size)
        self.record = record
        started = time.perf_counter()
        self.predictor = load_decided(record, self.batch_size)
        self.scope_rule = scope_rule(record.card, self.archive)  # which clips lie outside what the model was measured on
        # Rows record self.spec.sampling: what this worker really sampled, the card's unless overridden.
        self.spec = ClipSpec(**record.card.clip_settings(), sampling=record.sampling, decoder=decoder)
        # Several batches run at once (max_concurrency=batches_in_flight_per_worker): one decodes while
        # another infers. Each thread owns its reader, and so its DALI pipelines, whose per-frame waits
        # on their own CUDA stream then overlap; inference takes turns.
        self._make_reader = lambda: ClipReader(self.spec, gpu=real_gpu)
        self._thread_state = threading.local()
        self._predict_lock = threading.Lock()
        self.predictor.warm_up()  # compile once here, never mid-scan
        if self.spec.crop == FACE_CROP:
            from dfscan.kernels.faces import MtcnnDetector

            # The detector's networks are built once per process, here, and traced for a full batch.
            MtcnnDetector().warm_up(self.batch_size * self.spec.face_detect_frames, self.spec.face_detect_size)
        self.startup_s = time.perf_counter() - started

    def info(self) -> dict:
        """Also the readiness probe: it returns only once __init__ (load, build, warm-up) finished."""
        return {"worker": self.label, "pid": os.getpid(), "devices": self.visible_devices,
                "model_sha256": self.record.sha256, "startup_s": self.startup_s}

    def scan(self, paths: list[str]) -> dict:
        """Verdict rows for a batch of archive-relative paths (at most batch_size of them)."""
        try:
            return self._scan(paths)
        except Exception as exc:
            if is_device_error(exc):
                # A CUDA context that has seen an error is unusable: exit, and Ray restarts the actor.
                print(f"dfscan worker {self.label}: CUDA error, exiting: {exc}", file=sys.stderr, flush=True)
                os._exit(3)
            raise

    def _reader(self):
        if not hasattr(self._thread_state, "reader"):
            self._thread_state.reader = self._make_reader()
        return self._thread_state.reader

    def _scan(self, paths: list[str]) -> dict:
        reader = self._reader()
        probe_before, decode_before, faces_before = reader.times.probe, reader.times.decode, reader.times.faces
        decoded_before = reader.times.frames_decoded
        batch = reader.read_batch([str(self.archive / p) for p in paths], self.batch_size)
        ok_rows = [i for i, clip in enumerate(batch.clips) if clip.ok]
        with self._predict_lock:
            started = time.perf_counter()
            p_fake = self.predictor.predict(batch.frames) if ok_rows else None  # (batch_size,) float32
            inference_s = time.perf_counter() - started
        rows = [verdicts.clip_row(rel, clip, float(p_fake[i]) if clip.ok else None, threshold=self.record.threshold,
                                  band=self.record.band, sampling=self.spec.sampling, worker=self.label,
                                  untested_reason=self.scope_rule.untested_reason(ClipFacts.of_clip(clip))
                                  if clip.ok else None)
                for i, (rel, clip) in enumerate(zip(paths, batch.clips))]
        stages = {"probe": reader.times.probe - probe_before,
                  "decode": reader.times.decode - decode_before, "faces": reader.times.faces - faces_before,
                  "inference": inference_s}
        return {"rows": rows, "stages": stages, "frames_decoded": reader.times.frames_decoded - decoded_before}


# --- the Ray side: connecting, sizing and starting actors (the driver calls these) -------------------
def connect_ray(address: str | None) -> bool:
    """Reuse an in-process connection, join ``address`` (or RAY_ADDRESS), or start a local cluster:
    one on loopback only, without a dashboard, whose processes all die with this one
    (``scanner.ray_local``). A joined cluster is left as found.
    Returns whether this call connected (and so the caller must ``ray.shutdown()``)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    # Worker logs stay in Ray's session logs: TF start-up noise must not bury the progress bar.
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    else:
        start_local_ray(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    return True


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    count: int
    num_gpus: float  # per actor: 1/N with N workers per GPU (Ray packs N on each device), 0 on CPUs
    num_cpus: float  # per actor


def gpu_decoder(decoder: str) -> str:
    """The GPU decoder ``decoder`` means for the default number of workers per GPU: ``auto`` is nvdec
    where PyNvVideoCodec loads (checked on the driver's node), else dali-gpu."""
    if decoder != "auto":
        return decoder
    from dfscan.kernels.decode.nvdec import nvdec_available

    return "nvdec" if nvdec_available() else "dali-gpu"


def plan_workers(gpus: int | None, workers: int | None, resources: dict, workers_per_gpu: int | None = None,
                 decoder: str = "auto") -> WorkerPlan:
    """How many actors, with which resources, from --gpus/--workers/--workers-per-gpu and
    ``ray.cluster_resources()``. ``gpus=None`` means every GPU of the cluster; 0 (or a cluster without
    GPUs) means CPU workers, and then ``workers_per_gpu`` does not apply. ``workers_per_gpu=None``:
    ``default_workers_per_gpu`` for ``decoder`` and the cluster's cores per GPU."""
    gpus_total, cpus_total = int(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    gpus = gpus_total if gpus is None else gpus
    if gpus > gpus_total:
        raise ValueError(f"--gpus {gpus} asked for, but the cluster has {gpus_total} GPUs")
    if gpus > 0:
        per_gpu = workers_per_gpu or default_workers_per_gpu(decoder, cpus_total / gpus)
        count = gpus * per_gpu
        return WorkerPlan(count, 1.0 / per_gpu, min(1.0, cpus_total / count))
    count = workers or max(1, int(cpus_total) // 2)  # one per two cores: each decodes with threads
    # More workers than cores would leave actors pending forever: share the cores out instead.
    return WorkerPlan(count, 0.0, min(1.0, cpus_total / count))


# Processes sharing a GPU must not each take its memory at start-up, as TensorFlow and JAX do by default.
SHARED_GPU_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def start_actor(plan: WorkerPlan, name: str, config, record: ModelRecord, archive: Path,
                worker_class: type | None = None):
    """One ScanWorker actor of the model ``record`` the driver decided (``worker_class``: a subclass, which is how the chaos tests inject faults).
    Ray restarts it up to ``config.max_actor_restarts`` times; tasks are never retried by Ray
    (max_task_retries=0) because the driver's own retries keep rows exactly-once."""
    import ray

    shared = {"runtime_env": {"env_vars": SHARED_GPU_ENV}} if 0 < plan.num_gpus < 1 else {}
    return ray.remote(worker_class or ScanWorker).options(
        name=name, num_gpus=plan.num_gpus, num_cpus=plan.num_cpus,
        max_restarts=config.max_actor_restarts, max_task_retries=0,
        max_concurrency=config.batches_in_flight_per_worker, **shared,
    ).remote(record, str(archive), config.batch_size, config.decoder)
