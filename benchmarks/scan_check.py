"""The nightly command itself on a GPU: ``dfscan run ARCHIVE --gpus 1`` (its own local Ray cluster) over
a synthetic 1080p archive, once per decoder and workers-per-GPU setting, each run's rate taken from its
own ``--json`` summary; then p_fake agreement between decoders on the same files.

Per run: videos/s as the summary says (start-up included: Ray, the workers, the model's compile) and
without the start-up (``startup_seconds``), rows ok, the decoder of each row, and the files that fell
back (``fallback_from``, with the reasons). Agreement: for each pair of decoders, the per-file
difference of p_fake, median and max; the check fails when a median passes ``--max-median``.

The archive holds ``--distinct`` encoded files, copied (hard links) up to ``--videos`` names: the scan
reads each name as its own file (probe, cut, decode), and encoding 256 1080p files would cost minutes
of device time. The model is an untrained one of ``--arch``, seeded, saved with its card: the rate does
not depend on its weights, and its p_fake still depends on the pixels it is given.

    python -m dfscan.benchmarks.scan_check --out DIR [--videos 256 --distinct 32 --resolution 1080p --seconds 10]
        [--runs nvdec:1,nvdec:4,nvdec:8,dali-gpu:1,auto:4,pyav:4] [--agree nvdec:4,dali-gpu:1,pyav:4]
        [--gpus 1 | --gpus 0 --workers N] [--arch resnet50-lstm] [--gain 30] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np

MAX_MEDIAN_DIFFERENCE = 0.02  # p_fake, median over files, between any two decoders
DEFAULT_GAIN = 30.0  # the untrained model's output layer amplified (save_scan_model)


def write_scan_archive(directory: Path, videos: int, distinct: int, resolution: str, seconds: float,
                       codec: str = "h264") -> list[Path]:
    """``distinct`` files encoded in parallel, then hard links (copies where links fail) up to ``videos``."""
    from concurrent.futures import ProcessPoolExecutor

    from dfscan.benchmarks.archive import parse_resolution
    from dfscan.benchmarks.gpu_check import _encode
    from dfscan.kernels.encode import CODECS

    directory = Path(directory)
    source = directory / "encoded"
    source.mkdir(parents=True, exist_ok=True)
    width, height = parse_resolution(resolution)
    frames = max(1, int(round(seconds * 30)))
    extension = CODECS[codec].extension
    jobs = [(source / f"clip_{i:03d}.{extension}", width, height, frames, 30, codec, i, 8) for i in range(distinct)]
    todo = [job for job in jobs if not job[0].exists()]
    if todo:
        with ProcessPoolExecutor(max(1, min(len(todo), os.cpu_count() or 1))) as pool:
            list(pool.map(_encode, todo))
    archive = directory / "archive"
    archive.mkdir(exist_ok=True)
    paths = []
    for n in range(videos):
        original, target = jobs[n % distinct][0], archive / f"video_{n:05d}.{extension}"
        if not target.exists():
            try:
                os.link(original, target)
            except OSError:
                target.write_bytes(original.read_bytes())
        paths.append(target)
    return paths


def save_scan_model(out_dir: Path, arch: str, frames: int, size: int | None, sampling: str, seed: int = 0,
                    gain: float = DEFAULT_GAIN) -> Path:
    """An untrained ``arch`` with seeded weights and its card, as ``training.models.save_untrained``
    saves one, its output layer's weights times ``gain``: untrained, p_fake barely leaves 0.5 (0.488
    to 0.494 for eight 320x240 clips with cnn-lstm), so decoders would agree vacuously; times 30 the
    same clips spread from 0.20 to 0.34, and the decoders' differences grow as much."""
    import keras

    from dfscan.kernels.artifact import save_model

    from dfscan.kernels.card import MODEL_FILE
    from dfscan.kernels.scope import measure_scope
    from dfscan.training.models import CLASS_NAMES, ModelConfig, build_model

    keras.utils.set_random_seed(seed)
    config = ModelConfig(arch=arch, frames=frames, size=size, backbone_weights="none")
    model = build_model(config)
    probs = model.get_layer("probs")
    probs.set_weights([weight * gain for weight in probs.get_weights()])
    save_model(model, out_dir, {"name": f"scan-check-{arch}", "arch": arch, "frames": frames,
                                "size": config.resolved_size(), "sampling": sampling, "threshold": 0.5,
                                "class_names": list(CLASS_NAMES),
                                "scope": measure_scope(data="untrained", dataset=None, layout=None, videos={},
                                                       test_metrics=None)})
    return Path(out_dir) / MODEL_FILE


def scan_once(archive: Path, model: Path, out: Path, decoder: str, where: list[str], timeout_s: float) -> dict:
    """One ``dfscan run`` in its own process (``where``: its --gpus/--workers arguments); what its
    summary and its rows say."""
    command = [sys.executable, "-m", "dfscan.cli", "run", str(archive), "--model", str(model), "--out", str(out),
               "--decoder", decoder, "--full", "--json", *where]
    flag = "--workers-per-gpu" if "--workers-per-gpu" in where else "--workers"
    workers_per_gpu = int(where[where.index(flag) + 1])  # or CPU workers, with --gpus 0
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"decoder": decoder, "workers_per_gpu": workers_per_gpu, "failed": f"timed out after {timeout_s:.0f} s"}
    row = {"decoder": decoder, "workers_per_gpu": workers_per_gpu, "exit": done.returncode,
           "wall_s": round(time.perf_counter() - started, 1)}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {**row, "failed": f"exit {done.returncode}: {tail[-400:]}"}
    summary = json.loads(lines[-1])
    row.update({key: summary[key] for key in ("run_id", "scanned", "ok", "errors", "errors_by_class", "seconds",
                                              "videos_per_s")})
    row.update(rows_of_run(out, summary["run_id"]))
    startup = summary.get("startup_seconds")  # until every worker had loaded and compiled its model
    if startup is not None and summary["seconds"] > startup:
        row["startup_s"] = startup
        row["videos_per_s_after_startup"] = round(summary["scanned"] / (summary["seconds"] - startup), 2)
    return row


def rows_of_run(out: Path, run_id: str) -> dict:
    """Rows ok, the decoder of each row, fallbacks and their reasons, and p_fake by path."""
    from dfscan.scanner.verdicts import read_table

    table = read_table(out, columns=["run_id", "path", "status", "decoder", "fallback_from", "fallback_reason",
                                     "p_fake"]).to_pylist()
    rows = [r for r in table if r["run_id"] == run_id]
    reasons = Counter(r["fallback_reason"] for r in rows if r["fallback_from"])
    return {"rows": len(rows), "rows_ok": sum(r["status"] == "ok" for r in rows),
            "decoders": dict(Counter(str(r["decoder"]) for r in rows)),
            "fallbacks": dict(Counter(r["fallback_from"] for r in rows if r["fallback_from"])),
            "fallback_reasons": [f"{n} x {reason}" for reason, n in reasons.most_common(3)],
            "p_fake": {r["path"]: r["p_fake"] for r in rows if r["status"] == "ok"}}


def agreement(p_fake: dict[str, dict[str, float]]) -> list[dict]:
    """Per pair of runs (by label), the per-file |difference| of p_fake on the files both scored."""
    out = []
    for first, second in combinations(sorted(p_fake), 2):
        shared = sorted(set(p_fake[first]) & set(p_fake[second]))
        if not shared:
            out.append({"pair": f"{first} vs {second}", "files": 0})
            continue
        difference = np.abs(np.array([p_fake[first][p] for p in shared]) - np.array([p_fake[second][p] for p in shared]))
        spread = np.array([p_fake[first][p] for p in shared])
        out.append({"pair": f"{first} vs {second}", "files": len(shared), "median": float(np.median(difference)),
                    "max": float(difference.max()), "p_fake_spread": float(spread.max() - spread.min())})
    return out


def p_fake_by_decoder(paths: list[str], model: Path, decoders: list[str], gpu: bool = True,
                      batch_size: int = 4) -> dict[str, dict[str, float]]:
    """In one process, without Ray: each file read by each decoder as the model's card says, and its
    p_fake. A clip another decoder answered for (a fallback) is left out of that decoder's scores."""
    from dfscan.kernels.clips import ClipReader, ClipSpec
    from dfscan.kernels.predict import load_predictor

    predictor = load_predictor(model, batch_size)
    card = predictor.loaded.card
    scores: dict[str, dict[str, float]] = {}
    for decoder in decoders:
        reader = ClipReader(ClipSpec(frames=card.frames, size=card.size, sampling=predictor.sampling,
                                     decoder=decoder), gpu=gpu)
        scores[decoder] = {}
        for start in range(0, len(paths), batch_size):
            batch = reader.read_batch(paths[start:start + batch_size], batch_size)
            p_fake = predictor.predict(batch.frames)
            for clip, value in zip(batch.clips, p_fake[:len(batch.clips)].tolist()):
                if clip.ok and clip.decoder == decoder:
                    scores[decoder][clip.path] = float(value)
    return scores


def _label(decoder: str, workers: int) -> str:
    return f"{decoder}:{workers}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfscan.benchmarks.scan_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=None, help="archive, model and verdicts (default: OUT/work)")
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--distinct", type=int, default=32)
    parser.add_argument("--resolution", default="1080p")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--arch", default="resnet50-lstm")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--sampling", default="keyframe")
    parser.add_argument("--runs", default="nvdec:4,dali-gpu:1,pyav:4,nvdec:8,nvdec:1,auto:4",
                        help="decoder:workers-per-gpu, in order (the agreement's first: the budget may cut the rest)")
    parser.add_argument("--agree", default="nvdec:4,dali-gpu:1,pyav:4", help="runs whose p_fake are compared")
    parser.add_argument("--gpus", type=int, default=1, help="dfscan run --gpus (0: CPU workers, --workers)")
    parser.add_argument("--workers", type=int, default=None, help="dfscan run --workers, with --gpus 0")
    parser.add_argument("--gain", type=float, default=DEFAULT_GAIN, help="the model's output layer times this")
    parser.add_argument("--max-median", type=float, default=MAX_MEDIAN_DIFFERENCE)
    parser.add_argument("--run-timeout-s", type=float, default=150.0)
    parser.add_argument("--archive-only", action="store_true", help="write the archive (WORK/encoded) and stop")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no run after this many seconds")
    args = parser.parse_args(argv)
    try:
        runs = [(part.split(":")[0], int(part.split(":")[1])) for part in args.runs.split(",") if part]
        agree = {part for part in args.agree.split(",") if part}
    except (IndexError, ValueError):
        parser.error("--runs and --agree take decoder:workers pairs, e.g. nvdec:4")
    started = time.monotonic()
    work = args.work or args.out / "work"
    args.out.mkdir(parents=True, exist_ok=True)
    paths = write_scan_archive(work, args.videos, args.distinct, args.resolution, args.seconds, args.codec)
    if args.archive_only:
        print(f"{len(paths)} videos ({args.distinct} encoded) in {work / 'archive'}, "
              f"{time.monotonic() - started:.1f} s", flush=True)
        return 0
    model = save_scan_model(work / "model", args.arch, args.frames, args.size, args.sampling, gain=args.gain)
    report = {"videos": len(paths), "gain": args.gain, "distinct": args.distinct, "resolution": args.resolution, "arch": args.arch,
              "archive_s": round(time.monotonic() - started, 1), "runs": [], "agreement": [], "failures": []}
    p_fake: dict[str, dict[str, float]] = {}
    for decoder, workers in runs:
        if time.monotonic() - started > args.budget_s:
            report["failures"].append(f"{_label(decoder, workers)}: not run, budget of {args.budget_s:.0f} s spent")
            continue
        where = ["--gpus", str(args.gpus), "--workers-per-gpu", str(workers)] if args.gpus else \
            ["--gpus", "0", "--workers", str(args.workers or workers)]
        row = scan_once(paths[0].parent, model, work / f"verdicts-{decoder}-{workers}", decoder, where,
                        args.run_timeout_s)
        scores = row.pop("p_fake", {})
        if _label(decoder, workers) in agree and scores:
            p_fake[_label(decoder, workers)] = scores
        report["runs"].append(row)
        print(_line(row), flush=True)
        if "failed" in row:
            report["failures"].append(f"{_label(decoder, workers)}: {row['failed']}")
        elif row["rows_ok"] != len(paths) or row["fallbacks"]:
            report["failures"].append(f"{_label(decoder, workers)}: {row['rows_ok']} of {len(paths)} rows ok, "
                                      f"fallbacks {row['fallbacks']} {row['fallback_reasons']}")
        _write(args.out, report)
    report["agreement"] = agreement(p_fake)
    for pair in report["agreement"]:
        print(f"p_fake {pair['pair']}: " + (f"median {pair['median']:.4f}, max {pair['max']:.4f} over "
                                            f"{pair['files']} files (spread {pair['p_fake_spread']:.4f})"
                                            if pair["files"] else "no file in common"), flush=True)
        if pair["files"] and pair["median"] > args.max_median:
            report["failures"].append(f"p_fake {pair['pair']}: median difference {pair['median']:.4f} > "
                                      f"{args.max_median}")
    report["seconds"] = round(time.monotonic() - started, 1)
    _write(args.out, report)
    for failure in report["failures"]:
        print(f"FAILED {failure}", flush=True)
    return 1 if report["failures"] else 0


def _line(row: dict) -> str:
    if "failed" in row:
        return f"{row['decoder']:<9} x{row['workers_per_gpu']}: FAILED {row['failed']}"
    return (f"{row['decoder']:<9} x{row['workers_per_gpu']}: {row['videos_per_s']:.2f} videos/s (summary), "
            f"{row.get('videos_per_s_after_startup', float('nan')):.2f} after {row.get('startup_s', float('nan')):.1f} s "
            f"start-up; {row['rows_ok']}/{row['rows']} rows ok, decoders {row['decoders']}, fallbacks {row['fallbacks']}")


def _write(out: Path, report: dict) -> None:
    from dfscan.kernels.atomic import atomic_write_bytes

    atomic_write_bytes(out / "scan.json", json.dumps(report, indent=2).encode())


if __name__ == "__main__":
    raise SystemExit(main())
