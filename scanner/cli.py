"""The `dfscan` command line: a thin typer layer. Each command parses, builds a config, and calls one
library function. Bad arguments get a one-line message and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="dfscan: decide at scale whether videos are real or deepfakes.")


@app.callback()
def options(verbose: bool = typer.Option(False, "--verbose", help="Also show TensorFlow's and Keras's own "
                                         "logging (start-up notices, CUDA probing).")):
    # Read by kernels.quiet (level 0: --verbose, start TensorFlow as it likes) and inherited by Ray
    # workers and the app's server.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"


def _start_keras() -> None:
    """Before a command that runs a model: start Keras without the libraries' chatter unless --verbose
    (see kernels.quiet)."""
    from kernels.quiet import quiet_deep_learning_start

    quiet_deep_learning_start()


def fail_usage(message: str) -> None:
    """Bad usage: one clear line on stderr, exit code 2."""
    typer.echo(f"dfscan: error: {message}", err=True)
    raise typer.Exit(code=2)


def _warn(warnings, advice: str | None = None) -> None:
    """A model's quality problems, in plain words on stderr (stdout keeps its one JSON object)."""
    for warning in warnings:
        typer.echo(f"dfscan: warning: {warning}", err=True)
    if warnings and advice:
        typer.echo(f"dfscan: to do better: {advice}", err=True)


@app.command()
def probe(files: List[Path] = typer.Argument(..., help="Video files to probe."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")):
    """Probe files: container, codec, size, exact frame count, keyframes; or the error class."""
    from kernels.errors import VideoError
    from kernels.probe import probe as probe_file

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
                                                "(F, S, sampling, crop and face settings); overrides those options.")):
    """Write the frames the model sees, one PNG per sampled frame, plus a contact sheet."""
    from kernels.artifact import ArtifactError, load_card
    from kernels.clips import ClipReader, ClipSpec
    from kernels.export import write_clip

    try:
        if model is not None:
            card = load_card(model)
            settings = {**card.clip_settings(), "sampling": card.sampling}
        else:
            settings = dict(frames=n_frames, size=size, sampling=sampling, crop=crop, face_margin=face_margin)
        reader = ClipReader(ClipSpec(**settings, decoder=decoder))
    except (ValueError, ArtifactError) as exc:
        fail_usage(str(exc))
    (clip,) = reader.read([str(video)])
    if not clip.ok:
        typer.echo(f"{video}: {clip.error.error_class.value}: {clip.error.message}", err=True)
        raise typer.Exit(code=1)
    written = write_clip(clip, out)
    faces = "" if clip.faces is None else (f", face in {clip.faces.face_frames} of {clip.faces.detected_on} frames "
                                           f"detected on, crop {clip.crop}")
    typer.echo(f"{video}: {len([p for p in written if p.name.startswith('frame_')])} frames {clip.indices.tolist()} "
               f"via {clip.decoder}{faces} -> {out}")


@app.command()
def synth(out_dir: Path = typer.Argument(..., help="Directory for real/, fake/ and labels.csv."),
          source: Optional[Path] = typer.Option(None, "--from", help="Make the archive from your own real videos "
                                                "under this folder instead: each one with a face becomes a real clip "
                                                "and its self-blended fake (SBI). --videos, --size and --kind do not "
                                                "apply."),
          videos: int = typer.Option(40, "--videos", help="Videos in all, half real and half fake."),
          frames_per_video: int = typer.Option(32, "--frames-per-video"),
          size: str = typer.Option("128x128", "--size", help="WxH of the videos."),
          kind: str = typer.Option("portrait", "--kind", help="portrait (a real face, for face models; fakes "
                                   "self-blended) | cartoon (drawn faces, for whole-frame models)"),
          codec: str = typer.Option("h264", "--codec", help="h264 | vp9"),
          seed: int = typer.Option(0, "--seed"),
          blend_strength: float = typer.Option(1.0, "--blend-strength", help="Fakes: 1 blends within SBI's own "
                                               "ranges; up to 4 misaligns and recolours the face more plainly."),
          max_frames: int = typer.Option(240, "--max-frames", help="--from: frames of each video kept, from its "
                                         "start."),
          max_side: int = typer.Option(640, "--max-side", help="--from: larger frames are scaled down to this "
                                       "long side.")):
    """Write a labelled synthetic archive (deterministic per seed), or with --from one made from your own
    real videos. Not a substitute for real, labelled deepfakes."""
    if source is not None:
        _synth_from(source, out_dir, codec=codec, seed=seed, max_frames=max_frames, max_side=max_side,
                    blend_strength=blend_strength)
        return
    from training.synth import SynthConfig, parse_size, synth as write_archive

    try:
        width, height = parse_size(size)
        config = SynthConfig(videos=videos, frames_per_video=frames_per_video, width=width, height=height,
                             codec=codec, seed=seed, kind=kind, blend_strength=blend_strength)
    except ValueError as exc:
        fail_usage(str(exc))
    written = write_archive(out_dir, config)
    typer.echo(f"wrote {len(written)} {kind} videos to {out_dir} (labels.csv beside them)")


def _synth_from(source: Path, out_dir: Path, **settings) -> None:
    """`dfscan synth OUT --from DIR`: every video under DIR (the scan's own walk, OUT left out), one
    line on stderr for each file skipped, a summary on stdout; exit 1 when no pair could be made."""
    from scanner.walk import walk_archive
    from training.synth_from import FromConfig, synth_from

    if not source.is_dir():
        fail_usage(f"--from: folder not found: {source}")
    try:
        config = FromConfig(**settings)
    except ValueError as exc:
        fail_usage(str(exc))
    out_real = os.path.realpath(out_dir)

    def skip_line(message: str) -> None:
        typer.echo(f"dfscan: {message}", err=True)

    paths = [entry.path for entry in walk_archive(source, on_problem=skip_line)
             if not (os.path.realpath(source / entry.path) + os.sep).startswith(out_real + os.sep)]
    _start_keras()  # the face detector runs on TensorFlow
    result = synth_from(source, paths, out_dir, config, say=skip_line)
    skipped = ", ".join(f"{problem} {count}" for problem, count in sorted(result.counts().items()))
    typer.echo(f"wrote {len(result.videos) // 2} pairs (a real clip and its self-blended fake) from "
               f"{result.sources} videos to {out_dir}; skipped {len(result.skipped)}" + (f" ({skipped})" if skipped else ""))
    if not result.videos:
        typer.echo(f"dfscan: error: no video under {source} gave a pair: nothing to train on", err=True)
        raise typer.Exit(code=1)


@app.command()
def train(data: Path = typer.Option(..., "--data", help="Dataset root (folders or celeb-df-v2 layout)."),
          arch: str = typer.Option("cnn-lstm", "--arch", help="cnn-lstm | resnet50-lstm"),
          out: Path = typer.Option(..., "--out", help="Run directory for model.keras and its card."),
          epochs: int = typer.Option(20, "--epochs"),
          batch_size: int = typer.Option(32, "--batch-size"),
          lr: float = typer.Option(1e-4, "--lr"),
          n_frames: int = typer.Option(20, "--frames"),
          size: Optional[int] = typer.Option(None, "--size", help="S; default 64 (cnn-lstm) or 224 (resnet50)."),
          sampling: str = typer.Option("uniform", "--sampling", help="uniform | keyframe"),
          backbone_weights: str = typer.Option("imagenet", "--backbone-weights", help="imagenet | none | PATH"),
          layout: str = typer.Option("auto", "--layout", help="auto | folders | celeb-df-v2"),
          width: float = typer.Option(1.0, "--width", help="cnn-lstm channel multiplier."),
          seed: int = typer.Option(0, "--seed"),
          crop: str = typer.Option("frame", "--crop", help="frame | face: what the model sees (face: a square "
                                   "around the tracked face, detected with MTCNN)."),
          face_margin: float = typer.Option(1.3, "--face-margin", help="Face crop side / face box side."),
          fail_below: Optional[float] = typer.Option(None, "--fail-below", help="Exit 1 when the test AUC is "
                                                     "below this (or cannot be measured); the run is kept.")):
    """Train a model on videos read through the scanner's own input pipeline."""
    from training.fit import SMALL_DATA_ADVICE, TrainConfig, train as fit
    from training.models import architectures

    if arch not in architectures():
        fail_usage(f"unknown architecture {arch!r}; expected one of {', '.join(architectures())}")
    if not data.is_dir():
        fail_usage(f"dataset not found: {data}")
    from kernels.sampling import SAMPLING_MODES

    if sampling not in SAMPLING_MODES:
        fail_usage(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
    if epochs < 1 or batch_size < 1 or n_frames < 1 or lr <= 0:
        fail_usage("epochs, batch size and frames must be positive, and the learning rate above 0")
    if fail_below is not None and not 0.0 <= fail_below <= 1.0:
        fail_usage(f"--fail-below is an AUC between 0 and 1, got {fail_below}")
    config = TrainConfig(data=str(data), out=str(out), arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                         frames=n_frames, size=size, sampling=sampling, backbone_weights=backbone_weights,
                         layout=layout, width=width, seed=seed, crop=crop, face_margin=face_margin)
    try:
        config.resolved().clip_spec()  # bad crop, margin or size: one line, before any work
    except ValueError as exc:
        fail_usage(str(exc))
    _start_keras()
    try:
        result = fit(config)
    except ValueError as exc:  # bad dataset, layout or weights: a message, not a traceback
        fail_usage(str(exc))
    typer.echo(json.dumps({"run_dir": result.run_dir, **result.metrics, "warnings": list(result.warnings)},
                          default=str))
    _warn(result.warnings, advice=SMALL_DATA_ADVICE)
    if fail_below is not None and (result.test_auc is None or result.test_auc < fail_below):
        measured = "could not be measured" if result.test_auc is None else f"{result.test_auc:.3f}"
        typer.echo(f"dfscan: error: test AUC {measured} is below --fail-below {fail_below:g}; "
                   f"the run is kept in {result.run_dir}", err=True)
        raise typer.Exit(code=1)


@app.command()
def evaluate(data: Path = typer.Option(..., "--data", help="Dataset root."),
             model: Path = typer.Option(..., "--model", help="RUN_DIR/model.keras"),
             split: str = typer.Option("test", "--split", help="test | all"),
             layout: str = typer.Option("auto", "--layout", help="auto | folders | celeb-df-v2"),
             plot: Optional[Path] = typer.Option(None, "--plot", help="Write a ROC curve PNG here.")):
    """Video-level metrics of a model, as one JSON object on stdout."""
    from kernels.artifact import ArtifactError
    from training.evaluate import EvalConfig, evaluate as score

    if split not in ("test", "all"):
        fail_usage(f"unknown split {split!r}; expected test or all")
    if not data.is_dir():
        fail_usage(f"dataset not found: {data}")
    _start_keras()
    try:
        metrics = score(EvalConfig(data=str(data), model=str(model), split=split, layout=layout,
                                   plot=str(plot) if plot else None))
    except (ArtifactError, ValueError, FileNotFoundError) as exc:
        fail_usage(str(exc))
    typer.echo(json.dumps(metrics, default=str))
    _warn(metrics["warnings"])


@app.command()
def run(archive: Path = typer.Argument(..., help="Directory tree of videos to scan."),
        model: Path = typer.Option(..., "--model", help="MODEL.keras (its model.json card beside it)."),
        out: Path = typer.Option(..., "--out", help="Verdicts directory (a Parquet dataset)."),
        gpus: Optional[int] = typer.Option(None, "--gpus", help="GPU workers; default every visible GPU."),
        workers: Optional[int] = typer.Option(None, "--workers", help="CPU workers when there is no GPU."),
        workers_per_gpu: Optional[int] = typer.Option(None, "--workers-per-gpu", help="Scan workers (processes) "
                                                      "per GPU, 1-8; default 4 (dali-gpu 1), 1 per 2 cores at most."),
        batch_size: int = typer.Option(8, "--batch-size"),
        in_flight: int = typer.Option(2, "--in-flight", help="Batches each worker runs at once, each with its "
                                                             "own decode pipeline (more feed more NVDEC engines)."),
        batch_timeout: float = typer.Option(1800.0, "--batch-timeout", help="Seconds before a batch counts as "
                                            "hung: its worker is restarted and the batch retried, then isolated."),
        sampling: Optional[str] = typer.Option(None, "--sampling", help="uniform | keyframe; default: the model card's."),
        decoder: str = typer.Option("auto", "--decoder", help="auto | pyav | dali-cpu | dali-gpu | nvdec"),
        threshold: Optional[float] = typer.Option(None, "--threshold", help="Default: the model card's."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, ray://... or host:port."),
        full: bool = typer.Option(False, "--full", help="Rescan every file."),
        retry_errors: bool = typer.Option(False, "--retry-errors", help="Rescan files whose last row is an error."),
        extensions: Optional[str] = typer.Option(None, "--extensions", help="Comma-separated, e.g. mp4,mov."),
        follow_links: bool = typer.Option(False, "--follow-links", help="Follow symlinks inside ARCHIVE."),
        compact_after: Optional[int] = typer.Option(None, "--compact-after", help="Then compact OUT_DIR when it "
                                                    "holds more parts than this (see dfscan compact)."),
        as_json: bool = typer.Option(False, "--json", help="End with one JSON summary object.")):
    """Scan an archive on Ray workers and write one verdict row per new or changed video."""
    from scanner.config import DEFAULT_EXTENSIONS, ScanConfig
    from scanner.run import ScanError, UsageError, run_scan
    from scanner.sink import OutDirLocked

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
    if summary.compaction is not None:
        typer.echo(f"dfscan: compaction: {summary.compaction.line()}", err=True)
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(f"{summary.scanned} scanned ({summary.ok} ok, {summary.errors} errors), {summary.skipped} "
                   f"skipped, {summary.videos_per_s:.2f} videos/s -> {summary.out}")


@app.command()
def report(out_dir: Path = typer.Argument(..., help="Verdicts directory written by dfscan run."),
           csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the newest verdict per file as CSV."),
           json_path: Optional[Path] = typer.Option(None, "--json", help="... or as JSON."),
           archive: Optional[str] = typer.Option(None, "--archive", help="Only this archive's files.")):
    """Summarise verdicts: files, verdict counts, error classes; export the newest verdict per file."""
    from scanner.report import build_report, format_report, write_report

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
    from scanner import compact as compaction
    from scanner.sink import OutDirLocked, OutDirRefused

    try:
        typer.echo(compaction.compact(out_dir, rows_per_part).line())
    except (FileNotFoundError, ValueError, OutDirLocked, OutDirRefused) as exc:  # JournalError is a ValueError
        fail_usage(str(exc))
    except RuntimeError as exc:  # CompactError, OutDirFailed
        typer.echo(f"dfscan: compaction failed: {exc}", err=True)
        raise typer.Exit(code=1)


@app.command()
def demo(out: Path = typer.Option(Path("dfscan-demo"), "--out", help="Where the demo writes everything."),
         workers: Optional[int] = typer.Option(None, "--workers", help="CPU workers for the scan.")):
    """The embedded default: synth an archive, train a small cnn-lstm, evaluate it, scan the archive."""
    from scanner.demo import DemoConfig, run_demo

    _start_keras()
    run_demo(DemoConfig(out=out, workers=workers), say=typer.echo)


@app.command()
def bench(archive: Optional[Path] = typer.Option(None, "--archive", help="Measure on these files..."),
          synthetic: int = typer.Option(8, "--synthetic", help="...or on N synthetic videos."),
          resolution: str = typer.Option("720p", "--resolution", help="Synthetic: 480p, 720p, 1080p or WxH."),
          seconds: float = typer.Option(10.0, "--seconds", help="Synthetic: seconds per video."),
          codec: str = typer.Option("h264", "--codec", help="Synthetic: h264 | vp9."),
          gpus: Optional[int] = typer.Option(None, "--gpus"),
          workers: Optional[int] = typer.Option(None, "--workers"),
          sampling: str = typer.Option("both", "--sampling", help="uniform | keyframe | both"),
          model: Optional[Path] = typer.Option(None, "--model", help="A trained MODEL.keras..."),
          arch: str = typer.Option("cnn-lstm", "--arch", help="...or a fresh cnn-lstm | resnet50-lstm."),
          n_frames: int = typer.Option(20, "--frames"),
          size: Optional[int] = typer.Option(None, "--size"),
          width: float = typer.Option(1.0, "--width", help="cnn-lstm channel multiplier."),
          repeats: int = typer.Option(3, "--repeats", help="Measured runs after one warm-up."),
          batch_size: int = typer.Option(8, "--batch-size"),
          decoders: str = typer.Option("auto", "--decoders",
                                       help="Scan with each of these decoders, side by side (e.g. nvdec,dali-gpu)."),
          crops: str = typer.Option("frame,face", "--crop",
                                    help="Scan with whole frames, face crops, or both side by side (frame,face)."),
          out: Path = typer.Option(Path("bench-report"), "--out", help="REPORT_DIR for report.json/.md/.png.")):
    """Throughput of the real scanner (whole frames and face crops) vs the seed-style loop and the pure-decode bound."""
    from benchmarks.bench import BenchConfig, run_bench

    try:
        config = BenchConfig(out=out, archive=archive, synthetic=synthetic, resolution=resolution, seconds=seconds,
                             codec=codec, gpus=gpus, workers=workers, sampling=sampling, model=model, arch=arch,
                             frames=n_frames, size=size, width=width, repeats=repeats, batch_size=batch_size,
                             decoders=tuple(d.strip() for d in decoders.split(",") if d.strip()),
                             crops=tuple(c.strip() for c in crops.split(",") if c.strip()))
    except ValueError as exc:
        fail_usage(str(exc))
    _start_keras()
    try:
        run_bench(config, say=typer.echo)
    except ImportError as exc:
        fail_usage(str(exc))


@app.command("app")
def app_command(models: Optional[List[Path]] = typer.Option(None, "--models", help="A model file (.keras) or a folder searched for model.keras files; repeat for more."),
                verdicts: Optional[Path] = typer.Option(None, "--verdicts", help="A verdicts folder (the --out of dfscan run) to open in Browse results."),
                port: int = typer.Option(8501, "--port", help="Port to listen on."),
                address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (0.0.0.0: every interface)."),
                allow_host: Optional[List[str]] = typer.Option(None, "--allow-host", help="A host name the app answers besides localhost (as browsers send it in Host); repeat for more. Other names get 403 (DNS rebinding)."),
                max_upload_mb: int = typer.Option(2048, "--max-upload-mb", help="Largest video upload, in MB.")):
    """Start the web app (on 127.0.0.1 by default): check clips with several models; browse scan results."""
    from scanner.webapp import allowed_hosts, launch

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
