"""Typed configuration of a scan, resolved once by the CLI and written next to the verdicts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dfscan.kernels.probe import VIDEO_EXTENSIONS

DEFAULT_EXTENSIONS: tuple[str, ...] = VIDEO_EXTENSIONS
MAX_WORKERS_PER_GPU = 8  # each holds a model and its decoders in GPU memory; NVDEC has at most 7 to 8 engines


def default_workers_per_gpu(decoder: str, cpus_per_gpu: float) -> int:
    """Scan workers per GPU when none is asked for. Measured end to end on an H200 with 16 cores (1080p
    H.264, keyframe, resnet50-lstm; docs/performance.md): nvdec, which ``auto`` picks on a GPU, gave
    40.6, 65.9 and 84.6 videos/s with 1, 2 and 4 processes, so 4; dali-gpu gave 10.6 with 1 and 9.8
    with 2 (a second process gained nothing), so 1. Each worker feeds its decoders from reader
    threads, so at most one worker per two of the GPU's share of cores, as for CPU workers."""
    preferred = 1 if decoder == "dali-gpu" else 4
    return max(1, min(preferred, int(cpus_per_gpu // 2)))


def default_cpu_workers() -> int:
    """One CPU worker per two cores: each decodes with frame threads of its own."""
    return max(1, (os.cpu_count() or 1) // 2)


@dataclasses.dataclass
class ScanConfig:
    archive: Path
    model: Path
    out: Path
    gpus: int | None = None  # None: every visible GPU; 0: CPU workers
    workers: int | None = None  # CPU workers when there is no GPU; None: from the core count
    # Scan workers (processes) sharing each GPU: one process's host side (probe, cut, feeding NVDEC,
    # under Python's lock) bounds a GPU well below its decoders' limit (docs/performance.md).
    # None: default_workers_per_gpu, from the decoder and the cluster's cores per GPU (known once Ray
    # is up: scanner.workers.plan_workers); the run's manifest records the number used.
    workers_per_gpu: int | None = None
    batch_size: int = 8
    sampling: str | None = None  # None: the model card's (each worker reads it; rows record what was used)
    decoder: str = "auto"
    threshold: float | None = None  # None: the model card's decision threshold
    address: str | None = None  # Ray cluster to join; None: RAY_ADDRESS or a local cluster
    full: bool = False
    retry_errors: bool = False
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    follow_links: bool = False
    max_actor_restarts: int = 3
    batches_in_flight_per_worker: int = 2
    # A batch that has not come back after this long is taken as hung: its worker is killed (Ray
    # restarts it) and the batch is retried like a crash, so one stuck decode cannot stall a night.
    batch_timeout_s: float = 1800.0
    commit_rows: int = 1024  # rows buffered before a part is committed (a killed driver loses at most these)
    commit_seconds: float = 30.0  # ... or this long since the last commit, whichever comes first
    progress: bool = True  # the rich progress bar on stderr
    compact_after: int | None = None  # after the run, compact OUT_DIR when it holds more parts than this (scanner.compact)

    def __post_init__(self):
        """Every usage check of a scan, once: the CLI turns a ValueError into one line and exit 2."""
        from dfscan.kernels.decode import DECODERS
        from dfscan.kernels.sampling import SAMPLING_MODES

        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; expected one of {', '.join(DECODERS)}")
        if self.sampling is not None and self.sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling {self.sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")
        if (self.gpus is not None and self.gpus < 0) or (self.workers is not None and self.workers < 1):
            raise ValueError("--gpus must be 0 or more and --workers 1 or more")
        if self.workers_per_gpu is not None and not 1 <= self.workers_per_gpu <= MAX_WORKERS_PER_GPU:
            raise ValueError(f"--workers-per-gpu must be between 1 and {MAX_WORKERS_PER_GPU}, "
                             f"got {self.workers_per_gpu}")
        if self.batch_size < 1 or not 1 <= self.batches_in_flight_per_worker <= 16:
            raise ValueError("--batch-size must be 1 or more and --in-flight between 1 and 16")
        if not self.batch_timeout_s > 0:
            raise ValueError(f"--batch-timeout must be a positive number of seconds, got {self.batch_timeout_s}")
        if self.compact_after is not None and self.compact_after < 1:
            raise ValueError(f"--compact-after must be 1 or more parts, got {self.compact_after}")
        if not self.extensions:
            raise ValueError("--extensions names no extension")

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("archive", "model", "out"):
            out[key] = str(out[key])
        out["extensions"] = list(self.extensions)
        return out
