"""The `dfscan` command line: a thin typer layer. Each command parses, builds a config, and calls one
library function. Bad arguments get a one-line message and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from dfscan.cli_models import evaluate, fail_usage, start_keras, synth, train

# rich_markup_mode=None: typer 0.29's rich help panels print a type after every flag ("--full <bool>",
# "--help <bool>"), as if it took a value; its plain help shows flags as flags.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="dfscan: decide at scale whether videos are real or deepfakes.")


@app.callback()
def options(verbose: bool = typer.Option(False, "--verbose", help="Also show TensorFlow's, Keras's and Ray's own "
                                         "logging (start-up notices, CUDA probing, token authentication).")):
    # Read by kernels.quiet (level 0: --verbose, start TensorFlow as it likes) and inherited by Ray
    # workers and the app's server.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"


@app.command()
def probe(files: List[Path] = typer.Argument(..., help="Video files to probe."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")):
    """Probe files: container, codec, size, exact frame count, keyframes; or the error class."""
    from dfscan.kernels.errors import VideoError
    from dfscan.kernels.probe import probe as probe_file

    refused = 0
    for path in files:
        try:
            record = {"ok": True, **probe_file(path).as_dict()}
        except VideoError as exc:
            refused += 1
            record = {"ok": False, "path": str(path), **exc.as_dict()}
        if as_json:
            typer.echo(json.dumps(record))
        elif record["ok"]:
            typer.echo(f"{path}: {record['container']} {record['codec']} {record['profile'] or ''} "
                       f"{record['width']}x{record['height']} {record['pix_fmt']} {record['frame_count']} frames "
                       f"@ {record['fps'] or 0:.3f} fps, {record['duration_s'] or 0:.2f} s, "
                       f"keyframes {len(record['keyframes'])}, audio {'yes' if record['has_audio'] else 'no'}")
        else:
            typer.echo(f"{path}: {record['error_class']}: {record['error_message']}")
    raise typer.Exit(code=1 if refused else 0)


@app.command()
def frames(video: Path = typer.Argument(..., help="The video to sample."),
           out: Path = typer.Option(..., "--out", help="Directory for frame_<index>.png and sheet.png."),
           n_frames: int = typer.Option(20, "--frames", help="Frames per clip (F)."),
           size: int = typer.Option(224, "--size", help="Frame side S in pixels."),
           sampling: str = typer.Option("uniform", "--sampling", help="uniform | keyframe"),
           decoder: str = typer.Option("auto", "--decoder", help="auto | pyav | dali-cpu | dali-gpu | nvdec"),
           crop: str = typer.Option("frame", "--crop", help="frame | face (also writes faces.json)"),
           face_margin: float = typer.Option(1.3, "--face-margin", help="Face crop side / face box side."),
           model: Optional[Path] = typer.Option(None, "--model", help="Read the clip as this model's card says "
                                                "(F, S, sampling, crop and face settings); overrides those options. "
                                                "Default: none, the options decide.")):
    """Write the frames the model sees, one PNG per sampled frame, plus a contact sheet."""
    from dfscan.kernels.card import load_card
    from dfscan.kernels.errors import ArtifactError
    from dfscan.kernels.clips import ClipReader, ClipSpec
    from dfscan.kernels.export import write_clip

    try:
        if model is not None:
            card = load_card(model)
            settings = {**card.clip_settings(), "sampling": card.sampling}
        else:
            settings = dict(frames=n_frames, size=size, sampling=sampling, crop=crop, face_margin=face_margin)
        reader = ClipReader(ClipSpec(**settings, decoder=decoder))
    except (ValueError, ArtifactError) as exc:
        fail_usage(str(exc))
    if reader.spec.crop == "face":
        start_keras()  # the face detector runs on TensorFlow
    (clip,) = reader.read([str(video)])
    if not clip.ok:
        typer.echo(f"{video}: {clip.error.error_class.value}: {clip.error.message}", err=True)
        raise typer.Exit(code=1)
    written = write_clip(clip, out)
    faces = "" if clip.faces is None else (f", face in {clip.faces.face_frames} of {clip.faces.detected_on} frames "
                                           f"detected on, crop {clip.crop}")
    typer.echo(f"{video}: {len([p for p in written if p.name.startswith('frame_')])} frames {clip.indices.tolist()} "
               f"via {clip.decoder}{faces} -> {out}")


app.command()(synth)
app.command()(train)
app.command()(evaluate)


@app.command()
def run(archive: Path = typer.Argument(..., help="Directory tree of videos to scan."),
        model: Path = typer.Option(..., "--model", help="MODEL.keras (its model.json card beside it)."),
        out: Path = typer.Option(..., "--out", help="Verdicts directory (a Parquet dataset)."),
        gpus: Optional[int] = typer.Option(None, "--gpus", help="GPU workers; default every visible GPU."),
        workers: Optional[int] = typer.Option(None, "--workers", help="CPU workers when there is no GPU (or "
                                              "--gpus 0); default one per two cores."),
        workers_per_gpu: Optional[int] = typer.Option(None, "--workers-per-gpu", help="Scan workers (processes) "
                                                      "per GPU, 1-8; default 4 (dali-gpu 1), 1 per 2 cores at most."),
        batch_size: int = typer.Option(8, "--batch-size", help="Videos per batch, the compiled model's fixed "
                                       "batch (the last one is padded)."),
        in_flight: int = typer.Option(2, "--in-flight", help="Batches each worker runs at once, each with its "
                                                             "own decode pipeline (more feed more NVDEC engines)."),
        batch_timeout: float = typer.Option(1800.0, "--batch-timeout", help="Seconds before a batch counts as "
                                            "hung: its worker is restarted and the batch retried, then isolated."),
        sampling: Optional[str] = typer.Option(None, "--sampling", help="uniform | keyframe; default: the model card's."),
        decoder: str = typer.Option("auto", "--decoder", help="auto | pyav | dali-cpu | dali-gpu | nvdec"),
        threshold: Optional[float] = typer.Option(None, "--threshold", help="Default: the model card's."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, ray://... or host:port; "
                                              "default RAY_ADDRESS, else a local cluster on 127.0.0.1."),
        full: bool = typer.Option(False, "--full", help="Rescan every file."),
        retry_errors: bool = typer.Option(False, "--retry-errors", help="Rescan files whose last row is an error."),
        extensions: Optional[str] = typer.Option(None, "--extensions", help="Comma-separated, e.g. mp4,mov; "
                                                 "default every video extension FFmpeg commonly reads (mp4, m4v, "
                                                 "mov, mkv, webm, avi, mpg, mpeg, ts, mts, wmv, flv, 3gp)."),
        follow_links: bool = typer.Option(False, "--follow-links", help="Follow symlinks inside ARCHIVE."),
        compact_after: Optional[int] = typer.Option(None, "--compact-after", help="Then compact OUT_DIR when it "
                                                    "holds more parts than this (see dfscan compact); default: never."),
        as_json: bool = typer.Option(False, "--json", help="End with one JSON summary object."),
        fail_on_alarm: bool = typer.Option(False, "--fail-on-alarm", help="Exit 1 when the run raises an alarm "
                                           "(the model gave one answer to everything, ...), after committing its "
                                           "rows: for a cron job that pages someone.")):
    """Scan an archive on Ray workers and write one verdict row per new or changed video."""
    from dfscan.scanner.config import DEFAULT_EXTENSIONS, ScanConfig
    from dfscan.scanner.run import ScanError, UsageError, run_scan
    from dfscan.scanner.sink import OutDirLocked

    chosen = DEFAULT_EXTENSIONS
    if extensions is not None:
        chosen = tuple(e.strip().lstrip(".").lower() for e in extensions.split(",") if e.strip())
    try:
        config = ScanConfig(archive=archive, model=model, out=out, gpus=gpus, workers=workers,
                            workers_per_gpu=workers_per_gpu, batch_size=batch_size,
                            batches_in_flight_per_worker=in_flight, batch_timeout_s=batch_timeout, sampling=sampling,
                            decoder=decoder, threshold=threshold, address=address, full=full,
                            retry_errors=retry_errors, extensions=chosen, follow_links=follow_links,
                            progress=sys.stderr.isatty() and not as_json, compact_after=compact_after)
    except ValueError as exc:
        fail_usage(str(exc))
    try:
        summary = run_scan(config)
    except (UsageError, OutDirLocked) as exc:
        fail_usage(str(exc))
    except ScanError as exc:
        typer.echo(f"dfscan: scan failed: {exc}", err=True)
        raise typer.Exit(code=1)
    for alarm in summary.alarms:
        typer.echo(f"dfscan: alarm: {alarm['message']}", err=True)
    if summary.compaction is not None:
        typer.echo(f"dfscan: compaction: {summary.compaction.line()}", err=True)
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        said = ", ".join(f"{count} {name}" for name, count in summary.conclusions.items())
        typer.echo(f"{summary.scanned} scanned ({summary.ok} ok{': ' + said if said else ''}; {summary.errors} errors), "
                   f"{summary.skipped} skipped, {summary.videos_per_s:.2f} videos/s -> {summary.out}")
    if fail_on_alarm and summary.alarms:
        raise typer.Exit(code=1)


@app.command()
def report(out_dir: Path = typer.Argument(..., help="Verdicts directory written by dfscan run."),
           csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the newest verdict per file as CSV; "
                                                   "default: none."),
           json_path: Optional[Path] = typer.Option(None, "--json", help="... or as JSON; default: none."),
           archive: Optional[str] = typer.Option(None, "--archive", help="Only the files of this archive (the "
                                                 "ARCHIVE given to dfscan run); default: every file.")):
    """Summarise verdicts: files, verdict counts, error classes; export the newest verdict per file."""
    from dfscan.scanner.report import build_report, format_report, write_report

    try:
        summary = build_report(out_dir, archive=archive)
        typer.echo(format_report(summary))
        for path, fmt in ((csv_path, "csv"), (json_path, "json")):
            if path is not None:
                typer.echo(f"wrote {write_report(summary, path, fmt)}")
    except (FileNotFoundError, ValueError) as exc:
        fail_usage(str(exc))


@app.command()
def compact(out_dir: Path = typer.Argument(..., help="Verdicts directory written by dfscan run."),
            rows_per_part: int = typer.Option(1_000_000, "--rows-per-part", help="Rows of a compacted part at most.")):
    """Rewrite the committed parts into few large ones: the same rows in the same order; waits for no run."""
    from dfscan.scanner import compact as compaction
    from dfscan.scanner.sink import OutDirLocked, OutDirRefused

    try:
        typer.echo(compaction.compact(out_dir, rows_per_part).line())
    except (FileNotFoundError, ValueError, OutDirLocked, OutDirRefused) as exc:  # JournalError is a ValueError
        fail_usage(str(exc))
    except RuntimeError as exc:  # CompactError, OutDirFailed
        typer.echo(f"dfscan: compaction failed: {exc}", err=True)
        raise typer.Exit(code=1)


@app.command()
def demo(out: Path = typer.Option(Path("dfscan-demo"), "--out", help="Where the demo writes everything."),
         workers: Optional[int] = typer.Option(None, "--workers", help="CPU workers for the scan; default one "
                                               "per two cores.")):
    """The embedded default: synth an archive, train a small cnn-lstm, evaluate it, scan the archive."""
    from dfscan.demo import DemoConfig, run_demo

    start_keras()
    run_demo(DemoConfig(out=out, workers=workers, progress=sys.stderr.isatty()), say=typer.echo)


@app.command()
def bench(archive: Optional[Path] = typer.Option(None, "--archive", help="Measure on these files; default: "
                                                 "on --synthetic videos."),
          synthetic: int = typer.Option(8, "--synthetic", help="...or on N synthetic videos."),
          resolution: str = typer.Option("720p", "--resolution", help="Synthetic: 480p, 720p, 1080p or WxH."),
          seconds: float = typer.Option(10.0, "--seconds", help="Synthetic: seconds per video."),
          codec: str = typer.Option("h264", "--codec", help="Synthetic: h264 | vp9."),
          gpus: Optional[int] = typer.Option(None, "--gpus", help="GPU workers; default every visible GPU."),
          workers: Optional[int] = typer.Option(None, "--workers", help="CPU workers when there is no GPU; "
                                                "default one per two cores."),
          sampling: str = typer.Option("both", "--sampling", help="uniform | keyframe | both"),
          model: Optional[Path] = typer.Option(None, "--model", help="A trained MODEL.keras; default: a fresh, "
                                               "untrained --arch model."),
          arch: str = typer.Option("cnn-lstm", "--arch", help="...or a fresh cnn-lstm | resnet50-lstm."),
          n_frames: int = typer.Option(20, "--frames", help="Frames per clip (F)."),
          size: Optional[int] = typer.Option(None, "--size", help="Frame side S; default 64 (cnn-lstm) or 224 "
                                             "(resnet50-lstm)."),
          width: float = typer.Option(1.0, "--width", help="cnn-lstm channel multiplier."),
          repeats: int = typer.Option(3, "--repeats", help="Measured runs after one warm-up."),
          batch_size: int = typer.Option(8, "--batch-size", help="Videos per batch."),
          decoders: str = typer.Option("auto", "--decoders",
                                       help="Scan with each of these decoders, side by side (e.g. nvdec,dali-gpu)."),
          crops: str = typer.Option("frame,face", "--crop",
                                    help="Scan with whole frames, face crops, or both side by side (frame,face)."),
          out: Path = typer.Option(Path("bench-report"), "--out", help="REPORT_DIR for report.json/.md/.png.")):
    """Throughput of the real scanner (whole frames and face crops) vs the seed-style loop and the pure-decode bound."""
    from dfscan.benchmarks.bench import BenchConfig, run_bench

    try:
        config = BenchConfig(out=out, archive=archive, synthetic=synthetic, resolution=resolution, seconds=seconds,
                             codec=codec, gpus=gpus, workers=workers, sampling=sampling, model=model, arch=arch,
                             frames=n_frames, size=size, width=width, repeats=repeats, batch_size=batch_size,
                             decoders=tuple(d.strip() for d in decoders.split(",") if d.strip()),
                             crops=tuple(c.strip() for c in crops.split(",") if c.strip()))
    except ValueError as exc:
        fail_usage(str(exc))
    start_keras()
    try:
        run_bench(config, say=typer.echo)
    except ImportError as exc:
        fail_usage(str(exc))


@app.command("app")
def app_command(models: Optional[List[Path]] = typer.Option(None, "--models", help="A model file (.keras) or a folder searched for model.keras files; repeat for more. Default: none (add paths in the app's sidebar)."),
                verdicts: Optional[Path] = typer.Option(None, "--verdicts", help="A verdicts folder (the --out of dfscan run) to open in Browse results; default: none (choose one in the app)."),
                port: int = typer.Option(8501, "--port", help="Port to listen on."),
                address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (0.0.0.0: every interface)."),
                allow_host: Optional[List[str]] = typer.Option(None, "--allow-host", help="A host name the app answers besides localhost (as browsers send it in Host); repeat for more. Other names get 403 (DNS rebinding). Default: none."),
                max_upload_mb: int = typer.Option(2048, "--max-upload-mb", help="Largest video upload, in MB.")):
    """Start the web app (on 127.0.0.1 by default): check clips with several models; browse scan results."""
    from dfscan.scanner.webapp import allowed_hosts, launch

    if not 1 <= port <= 65535:
        fail_usage(f"--port must be between 1 and 65535, got {port}")
    if max_upload_mb < 1:
        fail_usage(f"--max-upload-mb must be at least 1, got {max_upload_mb}")
    try:
        allowed_hosts(address, list(allow_host or []))
    except ValueError as exc:
        fail_usage(str(exc))
    raise typer.Exit(code=launch(list(models or []), verdicts, port, max_upload_mb=max_upload_mb, address=address,
                                 allow_hosts=list(allow_host or [])))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
