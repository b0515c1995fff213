"""`dfscan run` as a library: walk -> incremental filter -> batches on Ray actors -> Parquet parts.

Guarantees, and where each one comes from:
- Exactly one row per scanned file per run. Every path lives in exactly one WorkItem at a time; an
  item either returns rows (written once) or fails and is replaced by a retry or by its halves.
- Nothing lost, nothing duplicated across a killed driver: rows are committed in renamed parts as
  they arrive; a rerun skips every file whose newest committed row matches its stat and model sha.
- A file that keeps killing workers is isolated: a failed batch is retried alone on an actor (so a
  second failure is its own), then bisected; a single file that fails alone twice gets DECODER_CRASH.

The decisions are ``scanner.policy`` (tested without Ray), the actors ``scanner.pool``, the progress
bar ``scanner.progress``; this module walks, dispatches, collects and commits.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from dfscan.kernels.artifact import ModelRecord
from dfscan.kernels.scope import Scope, card_scope, scope_from_dict
from dfscan.scanner import compact, journal, quarantine, sink, verdicts
from dfscan.scanner.alarms import OutcomeStats
from dfscan.scanner.config import ScanConfig
from dfscan.scanner.index import CommittedIndex
from dfscan.scanner.policy import CrashVerdict, WorkItem, after_failure, batches, failure_limit, timeout_for
from dfscan.scanner.pool import ActorPool, PoolFailed, one_line
from dfscan.scanner.progress import Progress
from dfscan.scanner.walk import WalkStats, resolve_archive, walk_archive
from dfscan.scanner.workers import connect_ray

class UsageError(ValueError):
    """Bad usage, reported in one line (exit code 2): missing archive, unreadable model, ..."""


class ScanError(RuntimeError):
    """The scan itself failed (exit code 1): workers cannot start, or keep dying."""


@dataclasses.dataclass
class ScanSummary:
    run_id: str
    archive: str
    files_seen: int
    scanned: int
    skipped: int
    ok: int
    errors: int
    errors_by_class: dict[str, int]
    seconds: float
    videos_per_s: float
    stage_seconds: dict[str, float]
    out: str
    # Not part of the --json object; useful to tests and the CLI.
    workers: dict[str, int] = dataclasses.field(default_factory=dict)  # rows per worker label
    walk_problems: list[str] = dataclasses.field(default_factory=list)
    parts: list[str] = dataclasses.field(default_factory=list)
    worker_failures: int = 0
    frames_decoded: int = 0  # summed over workers: what decoding cost, for benchmarks
    startup_seconds: float = 0.0  # until every worker had loaded and compiled its model
    # What this run's rows say about the model as a whole (scanner.alarms), as Alarm.as_dict() dicts;
    # part of the --json object, and of the run's manifest.
    alarms: list[dict] = dataclasses.field(default_factory=list)
    conclusions: dict[str, int] = dataclasses.field(default_factory=dict)  # this run's ok rows by conclusion
    quarantined: list[dict] = dataclasses.field(default_factory=list)  # damaged parts moved out (scanner.quarantine)
    compaction: compact.CompactResult | None = None  # --compact-after compacted OUT_DIR after the run

    def as_dict(self) -> dict:
        keys = ("run_id", "archive", "files_seen", "scanned", "skipped", "ok", "errors", "errors_by_class",
                "conclusions", "alarms", "seconds", "videos_per_s", "startup_seconds", "stage_seconds", "out")
        return {k: getattr(self, k) for k in keys}


def _validate(config: ScanConfig) -> tuple[ModelRecord, dict]:
    """Usage checks; returns the model as this run decides it, once (``kernels.artifact.ModelRecord``:
    file, sha256, card, sampling, threshold, band; every worker gets this record), and how far the card
    says the model can be trusted (with its scope, ``kernels.scope``, under "scope")."""
    if not Path(config.archive).is_dir():
        raise UsageError(f"archive not found or not a directory: {config.archive}")
    from dfscan.kernels.artifact import decide_model
    from dfscan.kernels.card import CARD_FILE, model_file
    from dfscan.kernels.errors import ArtifactError
    from dfscan.kernels.model_config import check_batch

    model = model_file(config.model)
    if not model.is_file() or not os.access(model, os.R_OK):
        raise UsageError(f"model not found or unreadable: {config.model}")
    try:  # every check of the workers' load_model that needs no TensorFlow: the driver never imports it
        record = decide_model(model, sampling=config.sampling, threshold=config.threshold)
        card = record.card
        check_batch(config.batch_size, card.frames, card.size, CARD_FILE)  # what each reader will hold
    except (ArtifactError, OSError) as exc:
        raise UsageError(f"refused model {config.model}: {exc}") from None
    try:
        sink.check_out_dir(config.out, config.archive)
    except sink.OutDirRefused as exc:
        raise UsageError(str(exc)) from None
    from dfscan.kernels.trust import card_trust

    trust = {**card_trust(card).as_dict(), "threshold": record.threshold, "inconclusive_band": record.band,
             "scope": card_scope(card).as_dict()}
    return record, trust


class _Scan:
    """One run's driver loop: dispatches WorkItems to the pool's ready actors, collects rows, and
    applies the policy to failures and to batches past their deadline."""

    def __init__(self, config: ScanConfig, record: ModelRecord, run_id: str, archive: Path, writer: sink.PartWriter,
                 worker_class: type | None = None, scope: Scope | None = None):
        from dfscan.scanner.workers import start_actor

        self.config, self.record, self.run_id, self.archive, self.writer = config, record, run_id, archive, writer
        self.worker_plan = None  # scanner.workers.WorkerPlan, once the cluster is known
        self.pool = ActorPool(lambda name: start_actor(self.worker_plan, name, config, record, archive, worker_class),
                              run_id)
        self.inflight: dict[object, tuple[int, WorkItem]] = {}  # ObjectRef -> (slot, item)
        self.deadlines: dict[object, float] = {}  # ObjectRef -> when its batch counts as hung
        self.retry: collections.deque[WorkItem] = collections.deque()
        self.counts = collections.Counter()
        self.outcomes = OutcomeStats(scope)  # for the run's alarms
        self.conclusions: collections.Counter = collections.Counter()
        self.errors_by_class: collections.Counter = collections.Counter()
        self.by_worker: collections.Counter = collections.Counter()
        self.stages = {"probe": 0.0, "decode": 0.0, "inference": 0.0}
        self.frames_decoded = 0  # frames the decoders produced, summed over workers
        self.failures = 0  # actor deaths and failed batches in all
        self.failures_since_success = 0
        self.peeked: WorkItem | None = None  # one fresh batch read ahead of dispatch
        self.sampling = record.sampling  # what the workers sample: --sampling, else the card's

    def workers_per_gpu(self) -> int | None:
        """What the run used (the manifest records it): --workers-per-gpu or its default; None on CPUs."""
        plan = self.worker_plan
        if plan is None:  # nothing to scan, no worker started
            return self.config.workers_per_gpu
        return round(1 / plan.num_gpus) if plan.num_gpus else None

    def start_workers(self) -> dict:
        """Start the pool and wait until every actor has loaded and warmed its model."""
        import ray

        from dfscan.scanner.workers import gpu_decoder, plan_workers

        # Only a default number of workers per GPU depends on the decoder: only then load PyNvVideoCodec here.
        decoder = gpu_decoder(self.config.decoder) if self.config.workers_per_gpu is None else self.config.decoder
        try:
            self.worker_plan = plan_workers(self.config.gpus, self.config.workers, ray.cluster_resources(),
                                            self.config.workers_per_gpu, decoder)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        try:
            return self.pool.start(self.worker_plan.count)
        except PoolFailed as exc:
            raise ScanError(str(exc)) from None

    # --- scheduling --------------------------------------------------------------------------------
    def _load(self, slot: int) -> tuple[int, bool]:
        items = [item for s, item in self.inflight.values() if s == slot]
        return len(items), any(item.isolated for item in items)

    def _dispatch(self, fresh: Iterator[WorkItem]) -> None:
        """Fill idle capacity of ready actors; retries first, then fresh batches."""
        for slot in sorted(self.pool.ready):
            while True:
                n, has_isolated = self._load(slot)
                if has_isolated or n >= self.config.batches_in_flight_per_worker:
                    break
                if self.retry:
                    if n > 0:  # an isolated item needs an actor with nothing else in flight
                        break
                    item = self.retry.popleft()
                else:
                    item = self._take_fresh(fresh)
                    if item is None:
                        break
                ref = self.pool.actors[slot].scan.remote([e.path for e in item.entries])
                item.timed_out = False
                self.inflight[ref] = (slot, item)
                self.deadlines[ref] = time.monotonic() + self._timeout_for(item)

    def _take_fresh(self, fresh: Iterator[WorkItem]) -> WorkItem | None:
        item, self.peeked = self.peeked, None
        return item if item is not None else next(fresh, None)

    def _fresh_left(self, fresh: Iterator[WorkItem]) -> bool:
        """Whether fresh work remains; peeks one batch ahead so the end is known without a worker."""
        if self.peeked is None:
            self.peeked = next(fresh, None)
        return self.peeked is not None

    def _timeout_for(self, item: WorkItem) -> float:
        return timeout_for(item, self.config.batch_size, self.config.batch_timeout_s)

    # --- results and failures ------------------------------------------------------------------------
    def _on_result(self, item: WorkItem, result: dict) -> None:
        scanned_at = dt.datetime.now(dt.timezone.utc)
        rows = result["rows"]
        for entry, row in zip(item.entries, rows):
            assert row["path"] == entry.path, "worker rows must follow the batch order"
            verdicts.stamp(row, archive=str(self.archive), size=entry.size, mtime_ns=entry.mtime_ns,
                           inode=entry.inode,
                           # every worker loaded this record's file, or refused to start
                           model_name=self.record.name, model_sha256=self.record.sha256, run_id=self.run_id,
                           scanned_at=scanned_at)
            self._count(row)
        for stage, seconds in result["stages"].items():
            self.stages[stage] = self.stages.get(stage, 0.0) + seconds
        self.frames_decoded += int(result.get("frames_decoded", 0))
        self.writer.add(rows)

    def _count(self, row: dict) -> None:
        self.counts["done"] += 1
        self.by_worker[row["worker"]] += 1
        self.outcomes.add(row)
        if row["status"] == "ok":
            self.counts["ok"] += 1
            self.conclusions[row.get("conclusion") or row.get("verdict")] += 1
        else:
            self.counts["errors"] += 1
            self.errors_by_class[row["error_class"]] += 1

    def _count_failure(self, exc: BaseException, what: str) -> None:
        """``what`` may name {n}, the failures in a row."""
        self.failures_since_success += 1
        if self.failures_since_success > failure_limit(len(self.pool.actors)):
            raise ScanError(f"{what.format(n=self.failures_since_success)}; last error: {one_line(exc)}")

    def _on_failure(self, item: WorkItem, exc: Exception) -> None:
        """Retry alone, then bisect; a lone file failing alone SINGLE_FILE_CRASHES times is the culprit."""
        self.failures += 1
        self._count_failure(exc, "workers failed {n} times in a row without finishing a batch")
        decision = after_failure(item, one_line(exc), self._timeout_for(item))
        if isinstance(decision, CrashVerdict):
            self._crash_row(item, decision)
        else:
            self.retry.extend(decision)

    def _crash_row(self, item: WorkItem, verdict: CrashVerdict) -> None:
        row = verdicts.driver_row(verdict.path, verdict.error_class, verdict.message, sampling=self.sampling)
        self._on_result(item, {"rows": [row], "stages": {}})

    def _kill_overdue(self) -> None:
        """Kill the worker of any batch past its deadline; Ray restarts it, and the batch comes back
        as an actor failure, so a hung file is retried and isolated like one that crashes."""
        now = time.monotonic()
        for ref, deadline in list(self.deadlines.items()):
            if now < deadline or ref not in self.deadlines:
                continue
            slot, item = self.inflight[ref]
            item.timed_out = True
            for other, (other_slot, _) in self.inflight.items():  # they die with the worker
                if other_slot == slot:
                    self.deadlines.pop(other, None)
            print(f"dfscan: a batch on worker {slot} ran past {self._timeout_for(item):.0f} s; "
                  f"restarting that worker", file=sys.stderr, flush=True)
            self.pool.kill_for_restart(slot)

    def run(self, fresh: Iterator[WorkItem], progress: Progress, total: list) -> None:
        import ray

        while self._fresh_left(fresh) or self.retry or self.inflight:  # pending pings alone do not
            self.pool.send_due_pings()
            self._dispatch(fresh)
            refs = list(self.inflight) + list(self.pool.pings)
            if not refs:
                if not self.pool.any_alive():
                    raise ScanError("no scan worker is alive")
                time.sleep(0.05)  # every actor is restarting: wait for the next probe
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=0.5)
            for ref in done:
                if ref in self.pool.pings:
                    gave_up = self.pool.on_ping(ref)
                    if gave_up is not None:
                        self._count_failure(gave_up, "scan workers keep dying")
                    continue
                slot, item = self.inflight.pop(ref)
                self.deadlines.pop(ref, None)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:  # the actor died (Ray may restart it)
                    self.pool.mark_recovering(slot)
                    self._on_failure(item, exc)
                except ray.exceptions.RayError as exc:  # scan() raised: the actor is still alive
                    self._on_failure(item, exc)
                else:
                    self.failures_since_success = 0  # a worker finished a batch (crash rows do not count)
                    self._on_result(item, result)
            self._kill_overdue()
            self.writer.add([])  # time-based commits while results trickle in
            progress.update(self.counts["done"], self.counts["errors"], total[0])


def run_scan(config: ScanConfig, worker_class: type | None = None) -> ScanSummary:
    """Scan ``config.archive`` into ``config.out``. Raises UsageError, sink.OutDirLocked or ScanError
    (a write to OUT_DIR that fails, no permission or a full disk, is a ScanError of one line).
    ``worker_class``: a ScanWorker subclass to run instead (the chaos tests inject faults with one).
    Ray is imported only when there is something to scan: a rerun with nothing new spares its 40 MB."""
    started = time.monotonic()
    record, model_trust = _validate(config)
    archive = resolve_archive(config.archive)
    out = Path(config.out)
    run_id = sink.new_run_id()
    try:
        lock = sink.OutDirLock(out, run_id).acquire()  # raises OutDirLocked: a second run never writes
    except sink.OutDirRefused as exc:
        raise UsageError(str(exc)) from None
    except sink.OutDirFailed as exc:
        raise ScanError(str(exc)) from None
    we_started_ray = False
    scan = writer = None
    try:
        sink.prepare_out_dir(out)
        compact.recover(out)  # a killed `dfscan compact`: finished (or rolled back) before anything is read
        moved = quarantine.quarantine_damaged(out, run_id)  # before anything trusts the committed rows
        for record_moved in moved:
            print(quarantine.notice(record_moved, out), file=sys.stderr, flush=True)
        adopted = sink.orphan_parts(out)
        writer = sink.PartWriter(out, run_id, config.commit_rows, config.commit_seconds)
        scan = _Scan(config, record, run_id, archive, writer, worker_class, scope_from_dict(model_trust["scope"]))
        # New, changed, moved, other model, errors under --retry-errors: decided in batches against the
        # committed rows' digests (scanner.index), so memory does not grow by objects per file.
        index = (CommittedIndex.empty() if config.full
                 else CommittedIndex.build(out, str(archive), record.sha256, config.retry_errors))
        stats = WalkStats()
        progress = Progress(config.progress)
        walk = walk_archive(archive, config.extensions, config.follow_links, stats, on_problem=progress.log)
        fresh = batches(index.select(walk), config.batch_size)
        first = next(fresh, None)
        startup_seconds = 0.0
        if first is not None:  # a nightly run with nothing new starts no worker at all
            we_started_ray = connect_ray(config.address)
            scan.start_workers()
            startup_seconds = time.monotonic() - started
            # The total for the progress bar comes from a second, counting-only walk in the
            # background, so the scan starts at once and no file list is ever held in memory.
            total: list = [None]
            counter = threading.Thread(target=lambda: total.__setitem__(0, index.count(walk_archive(
                archive, config.extensions, config.follow_links))), daemon=True, name="dfscan-count")
            counter.start()
            with progress.bar:
                scan.run(itertools.chain([first], fresh), progress, total)
        writer.flush()
        seconds = time.monotonic() - started
        stages = {k: round(v, 3) for k, v in scan.stages.items()}
        stages["write"] = round(writer.write_seconds, 3)
        done = scan.counts["done"]
        summary = ScanSummary(
            run_id=run_id, archive=str(archive), files_seen=stats.files, scanned=done,
            skipped=stats.files - done, ok=scan.counts["ok"], errors=scan.counts["errors"],
            errors_by_class=dict(sorted(scan.errors_by_class.items())), seconds=round(seconds, 3),
            videos_per_s=round(done / seconds, 3) if seconds > 0 else 0.0, stage_seconds=stages, out=str(out),
            workers=dict(scan.by_worker), walk_problems=list(stats.problems),
            parts=[p.name for p in writer.parts], worker_failures=scan.failures,
            frames_decoded=scan.frames_decoded, startup_seconds=round(startup_seconds, 3), quarantined=moved,
            alarms=[alarm.as_dict() for alarm in scan.outcomes.alarms()],
            conclusions=dict(sorted(scan.conclusions.items(), key=lambda item: str(item[0]))))
        sink.commit_run(out, run_id, writer.parts, record.sha256, record.name,
                        {**config.as_dict(), "workers_per_gpu": scan.workers_per_gpu()},
                        summary.as_dict(), adopted, model_trust=model_trust, quarantined=moved)
        if config.compact_after is not None and len(sink.committed_parts(out)) > config.compact_after:
            summary.compaction = compact.compact_locked(out)  # still under the lock; the run is committed
        return summary
    except sink.OutDirRefused as exc:
        raise UsageError(str(exc)) from None
    except (sink.OutDirFailed, compact.CompactError, journal.JournalError) as exc:
        raise ScanError(str(exc)) from None
    finally:
        if writer is not None:  # a failed or interrupted run still commits the rows it has
            with contextlib.suppress(Exception):
                writer.flush()
        if scan is not None and scan.pool.actors:  # workers were started, so Ray is imported
            import ray

            if ray.is_initialized():
                scan.pool.stop()
        if we_started_ray:
            import ray

            ray.shutdown()
        lock.release()
