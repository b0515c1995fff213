"""Benchmark reports: ``report.json`` (the data), ``report.md`` (a table a person reads) and
``throughput.png`` (bars per mode with the baseline and the bound, and the stage breakdown)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Sequence

from dfscan.kernels.atomic import atomic_path, atomic_write_bytes

STAGES = ("probe", "decode", "faces", "inference", "write")  # faces: detect, track, crop (crop="face")


def spread(values: Sequence[float]) -> dict:
    """Median over repeats, with the spread around it."""
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def machine_info() -> dict:
    import psutil

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "processor": platform.processor()}
    try:
        from dfscan.kernels.decode import gpu_count

        info["gpus"] = gpu_count()
    except Exception:  # noqa: BLE001 - the report is still useful without it
        info["gpus"] = None
    return info


def bottleneck(stage_seconds: dict) -> str | None:
    timed = {stage: stage_seconds.get(stage) or 0.0 for stage in STAGES}
    return max(timed, key=timed.get) if any(timed.values()) else None


def to_markdown(report: dict) -> str:
    lines = ["# dfscan throughput report", "",
             f"Machine: {report['machine'].get('platform')}, {report['machine'].get('cpus')} CPUs, "
             f"{report['machine'].get('memory_gb')} GB, GPUs: {report['machine'].get('gpus')}", "",
             f"Archive: {report['archive']}", "",
             "| mode | videos/s (median) | spread | frames decoded/s | × baseline | of decode bound | bound by |",
             "|---|---|---|---|---|---|---|"]
    for name, mode in report["modes"].items():
        rate = mode["videos_per_s"]
        speedup = mode.get("speedup_vs_baseline")
        fraction = mode.get("fraction_of_decode_bound")
        lines.append(
            f"| {name} | {rate['median']:.2f} | "
            f"{'one run' if rate.get('n', 2) == 1 else format(rate['min'], '.2f') + '–' + format(rate['max'], '.2f')} | "
            f"{mode['frames_decoded_per_s']['median']:.0f} | "
            f"{'' if speedup is None else f'{speedup:.2f}×'} | "
            f"{'' if fraction is None else f'{fraction:.0%}'} | {mode.get('bottleneck') or ''} |")
    lines += ["", "Frames decoded counts every frame a decoder produced, including those it only passed through on "
              "the way to a wanted one (DALI decodes from the start of what it is fed).",
              "", "Seconds per stage (median run, summed over workers):", "",
              "| mode | " + " | ".join(STAGES) + " |", "|---" * (len(STAGES) + 1) + "|"]
    for name, mode in report["modes"].items():
        stages = mode.get("stage_seconds")
        if not stages:
            continue  # the baseline and the bound are not staged
        lines.append(f"| {name} | " + " | ".join(f"{stages.get(s, 0.0):.2f}" for s in STAGES) + " |")
    lines += face_table(report["modes"])
    if report.get("agreement"):
        lines += ["", "Agreement (grey levels): each decoder against PyAV at the same indices (mean absolute "
                  "error), and DALI fed the cut GOPs against DALI fed the whole file:", "",
                  "| check | mean difference from PyAV | cut vs whole, max difference | "
                  "cut vs whole one frame later, mean difference |", "|---|---|---|---|"]
        for name, check in report["agreement"].items():
            first = check.get("mean_abs_diff_vs_pyav", check.get("error", ""))
            first = " ".join(str(first).replace("|", "/").split())[:300]  # an error text must not break the table
            lines.append(f"| {name} | {first} | {check.get('max_abs_diff_same_indices', '')} | "
                         f"{check.get('mean_abs_diff_one_frame_later', '')} |")
    if report.get("failures") or report.get("skipped"):
        lines += ["", "Failed checks:", ""] + [f"- {' '.join(str(f).split())[:500]}" for f in report["failures"]]
        lines += [f"- skipped, out of time: {name}" for name in report.get("skipped", [])]
    lines += ["", f"Peak RSS: {report.get('peak_rss_mb')} MB. GPU memory: {report.get('gpu_memory_mb')} MB.", ""]
    return "\n".join(lines)


def face_table(modes: dict) -> list[str]:
    """Whole frames and face crops side by side, per sampling mode: what the face stage costs and finds."""
    scanned = {name: mode for name, mode in modes.items() if "crop" in mode}
    if not any(mode["crop"] == "face" for mode in scanned.values()):
        return []
    lines = ["", "Whole frames and face crops (the face stage: detection, tracking and crop; seconds summed over "
             "workers, median run; the seed loop detects no faces):", "",
             "| mode | crop | videos/s | × baseline | face stage s | face ms/video | videos with a face "
             "| face frames per video |", "|---|---|---|---|---|---|---|---|"]
    for name, mode in scanned.items():
        faces = mode.get("faces") or {}
        frames = faces.get("face_frames") or []
        speedup = mode.get("speedup_vs_baseline")
        per_video = mode.get("face_ms_per_video")
        found = (f"{faces.get('videos_with_face', 0)} of {sum(faces.get('crops', {}).values())}"
                 if mode["crop"] == "face" else "–")
        lines.append(f"| {name} | {mode['crop']} | {mode['videos_per_s']['median']:.2f} | "
                     f"{'' if speedup is None else f'{speedup:.2f}×'} | {mode['stage_seconds'].get('faces', 0.0):.2f} | "
                     f"{'' if per_video is None else f'{per_video:.0f}'} | "
                     f"{found} | "
                     f"{f'{sum(frames) / len(frames):.1f}' if frames else '–'} |")
    return lines


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["modes"])
    rates = [report["modes"][n]["videos_per_s"]["median"] for n in names]
    figure, (bars, stages) = plt.subplots(1, 2, figsize=(11, 4))
    bars.bar(names, rates, color=["#4c72b0" if "scanner" in n else "#999999" for n in names])
    bars.set_ylabel("videos / s")
    bars.set_title("Throughput per mode")
    bars.tick_params(axis="x", rotation=20)
    bottom = [0.0] * len(names)
    for stage in STAGES:
        values = [(report["modes"][n].get("stage_seconds") or {}).get(stage, 0.0) for n in names]
        stages.bar(names, values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values)]
    stages.set_ylabel("seconds (summed over workers)")
    stages.set_title("Where the time goes")
    stages.legend()
    stages.tick_params(axis="x", rotation=20)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=90)
    plt.close(figure)


def write_report(report: dict, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "png": out_dir / "throughput.png"}
    atomic_write_bytes(paths["json"], json.dumps(report, indent=2, default=str).encode())
    atomic_write_bytes(paths["md"], to_markdown(report).encode())
    plot(report, paths["png"])
    return paths
