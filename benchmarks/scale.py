"""Scale benchmark of the nightly rerun: an archive of N empty .mp4 files, so only the walk, the rerun's
decision (scanner.index), the sink and compaction are timed, never decoding.

    python -m dfscan.benchmarks.scale --files 100000 [--work DIR] [--new 1000] [--direct] [--baseline SMALLER.json]

Phases, each driver in a process of its own so its peak RSS (``getrusage``) is the driver's alone:
1. make the archive (1,000 files a folder; reused when the work folder already has it),
2. the first scan: ``run_scan`` on Ray workers (every row EMPTY), or with ``--direct`` the rows a first scan
   writes, committed by the sink's own PartWriter in parts of ``commit_rows`` (no worker, no Ray),
3. a rerun with nothing new, 4. a rerun after ``--new`` files were added (Ray workers scan them),
5. ``dfscan compact`` (scanner.compact), 6. reading every row with pyarrow.dataset, before and after,
7. a rerun with nothing new over the compacted folder.
Results go to ``WORK/scale-N.json`` (and stdout). ``--baseline`` (the report of a smaller N) adds the slope
between the two sizes and its extrapolation to 10,000,000 files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES_PER_FOLDER = 1000
EXTRAPOLATE_TO = 10_000_000


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage: Linux's ru_maxrss keeps the high-water mark of the
    process before its exec, which is the parent's."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_archive(archive: Path, files: int, start: int = 0) -> float:
    """``files`` empty .mp4 files numbered from ``start``; returns the seconds it took."""
    began = time.perf_counter()
    for i in range(start, start + files):
        folder = archive / f"d{i // FILES_PER_FOLDER:05d}"
        if i % FILES_PER_FOLDER == 0 or i == start:
            folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(folder / f"v{i:08d}.mp4", os.O_CREAT | os.O_WRONLY, 0o644))
    return time.perf_counter() - began


def _config(archive: Path, model: Path, out: Path, compact_after: int | None = None):
    from dfscan.scanner.config import ScanConfig

    return ScanConfig(archive=archive, model=model, out=out, progress=False, compact_after=compact_after)


def direct_first_scan(archive: Path, model: Path, out: Path) -> dict:
    """The rows a first scan of empty files commits (EMPTY errors, stamped with the walk's stat, the model
    and the run), written by the sink's PartWriter in parts of the default ``commit_rows``, and the run
    committed; no worker, no Ray. Only for building a large verdict folder to time reruns on."""
    from dfscan.kernels.artifact import verify_model
    from dfscan.kernels.errors import ErrorClass
    from dfscan.scanner import sink, verdicts
    from dfscan.scanner.walk import resolve_archive, walk_archive

    config = _config(archive, model, out)
    _, card, digest = verify_model(model)
    root = resolve_archive(archive)
    run_id = sink.new_run_id()
    out.mkdir(parents=True, exist_ok=True)
    with sink.OutDirLock(out, run_id):
        sink.prepare_out_dir(out)
        writer = sink.PartWriter(out, run_id, config.commit_rows, config.commit_seconds)
        for entry in walk_archive(root):
            row = verdicts.driver_row(entry.path, ErrorClass.EMPTY, "the file is empty", sampling=str(card["sampling"]))
            writer.add([verdicts.stamp(row, archive=str(root), size=entry.size, mtime_ns=entry.mtime_ns,
                                       inode=entry.inode, model_name=str(card["name"]), model_sha256=digest,
                                       run_id=run_id, scanned_at=dt.datetime.now(dt.timezone.utc))])
        writer.flush()
        sink.commit_run(out, run_id, writer.parts, digest, str(card["name"]), config.as_dict(), {}, [])
    return {"parts": len(writer.parts)}


def child_scan(archive: Path, model: Path, out: Path) -> dict:
    from dfscan.scanner.run import run_scan

    summary = run_scan(_config(archive, model, out))
    return {"files_seen": summary.files_seen, "scanned": summary.scanned, "skipped": summary.skipped,
            "run_seconds": summary.seconds}


def child_compact(out: Path) -> dict:
    from dfscan.scanner.compact import compact

    result = compact(out)
    return {"parts_before": result.parts_before, "parts_after": result.parts_after, "rows": result.rows}


def _child(kind: str, args: list[str]) -> dict:
    """Run one phase in a fresh process; its wall time and peak RSS with its own result."""
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dfscan.benchmarks.scale", "--child", kind, *args], capture_output=True,
                          text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr.strip()[-2000:]}")
    return {"wall_s": round(wall, 2), **json.loads(proc.stdout.strip().splitlines()[-1])}


def read_seconds(out: Path) -> dict:
    """Every row read with pyarrow.dataset, as `dfscan report` and the app read them (the current schema
    given), and as a reader that points pyarrow at the folder does."""
    import pyarrow.dataset as pads

    from dfscan.scanner import verdicts

    began = time.perf_counter()
    rows = verdicts.read_table(out).num_rows
    ours = time.perf_counter() - began
    began = time.perf_counter()
    plain = pads.dataset(str(out), format="parquet").to_table().num_rows
    return {"rows": rows, "read_table_s": round(ours, 3), "plain_dataset_s": round(time.perf_counter() - began, 3),
            "plain_rows": plain}


def _model(work: Path) -> Path:
    model = work / "model" / "model.keras"
    if not model.is_file():
        from dfscan.training.models import save_untrained

        save_untrained("cnn-lstm", 4, 32, 0.05, model.parent, "scale-bench", dropout=0.0)
    return model


def run(files: int, work: Path, new: int, direct: bool, baseline: Path | None) -> dict:
    archive, out = work / f"archive-{files}", work / f"verdicts-{files}"
    report_path = work / f"scale-{files}.json"
    result = json.loads(report_path.read_text()) if report_path.is_file() else {}
    result.update(files=files, machine=f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}",
                  date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def save(phase: str, value) -> None:
        result[phase] = value
        report_path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{phase}: {json.dumps(value)}", flush=True)

    if "make" not in result or not archive.is_dir():
        shutil.rmtree(archive, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        save("make", {"seconds": round(make_archive(archive, files), 2)})
    model = _model(work)
    paths = [str(archive), str(model), str(out)]
    if "first_scan" not in result or not out.is_dir():
        shutil.rmtree(out, ignore_errors=True)
        save("first_scan", {"direct": direct, **_child("direct" if direct else "scan", paths)})
    save("rerun", _child("scan", paths))
    save("read_before", read_seconds(out))
    if new:
        added = result.get("added_before", 0)  # numbered apart from the first files, and new on every invocation
        make_archive(archive, new, start=10 ** 8 + added)
        result["added_before"] = added + new
        save("rerun_new", {"added": new, **_child("scan", paths)})
    save("compact", _child("compact", [str(out)]))
    save("read_after", read_seconds(out))
    save("rerun_after_compact", _child("scan", paths))
    if baseline is not None:
        save("extrapolation", extrapolate(json.loads(baseline.read_text()), result))
    return result


def extrapolate(small: dict, large: dict) -> dict:
    """The slope between two sizes, per million files, and where it puts 10,000,000 files."""
    span = (large["files"] - small["files"]) / 1e6
    out = {"from_files": [small["files"], large["files"]]}
    for name, phase, key in (("rerun_wall_s", "rerun", "wall_s"), ("rerun_peak_rss_mb", "rerun", "peak_rss_mb"),
                             ("compact_wall_s", "compact", "wall_s"), ("read_after_s", "read_after", "read_table_s")):
        a, b = small[phase][key], large[phase][key]
        slope = (b - a) / span
        out[name] = {"per_million": round(slope, 3), "at_10M": round(b + slope * (EXTRAPOLATE_TO - large["files"]) / 1e6, 1)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dfscan.benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=None, help="Kept between invocations (default: a new temp folder).")
    parser.add_argument("--new", type=int, default=1000, help="Files added before the second rerun (0: none).")
    parser.add_argument("--direct", action="store_true", help="Build the first scan's rows without workers.")
    parser.add_argument("--baseline", type=Path, default=None, help="scale-N.json of a smaller N: extrapolate.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        paths = [Path(p) for p in rest]
        began = time.perf_counter()
        value = {"direct": direct_first_scan, "scan": child_scan, "compact": child_compact}[args.child](*paths)
        print(json.dumps({"seconds": round(time.perf_counter() - began, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
                          **value}))
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.files < 1:
        parser.error("--files must be 1 or more")
    work = args.work or Path(tempfile.mkdtemp(prefix="dfscan-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    run(args.files, work, args.new, args.direct, args.baseline)


if __name__ == "__main__":
    main()
