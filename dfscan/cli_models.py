"""The commands that make and measure models (`dfscan synth`, `train`, `evaluate`) and the helpers every
command uses. Only scanner/cli.py imports this module; it registers these functions on its typer app."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer


def start_keras() -> None:
    """Before a command that runs a model: start Keras without the libraries' chatter unless --verbose
    (see kernels.quiet)."""
    from dfscan.kernels.quiet import quiet_deep_learning_start

    quiet_deep_learning_start()


def fail_usage(message: str) -> None:
    """Bad usage: one clear line on stderr, exit code 2."""
    typer.echo(f"dfscan: error: {message}", err=True)
    raise typer.Exit(code=2)


def warn(warnings, advice: str | None = None) -> None:
    """A model's quality problems, in plain words on stderr (stdout keeps its one JSON object)."""
    for warning in warnings:
        typer.echo(f"dfscan: warning: {warning}", err=True)
    if warnings and advice:
        typer.echo(f"dfscan: to do better: {advice}", err=True)


# Dataset options shared by train and evaluate (training/layouts.py, training/faceforensics.py).
_LAYOUT = typer.Option("auto", "--layout", help="auto | folders | celeb-df-v2 | faceforensics | dfdc")
_FF_COMPRESSION = typer.Option("c23", "--compression", help="faceforensics: raw | c23 | c40.")
_FF_METHODS = typer.Option(None, "--methods", help="faceforensics: comma list; default the five FF++ methods "
                                                 "present.")
_FF_DFD = typer.Option(False, "--include-dfd", help="faceforensics: add DeepFakeDetection (no official split) to "
                                                    "training; default: left out.")


def say_on_stderr(line: str) -> None:
    """A layout's notes (what it used and left out): one line each on stderr."""
    typer.echo(f"dfscan: {line}", err=True)


def synth(out_dir: Path = typer.Argument(..., help="Directory for real/, fake/ and labels.csv."),
          source: Optional[Path] = typer.Option(None, "--from", help="Make the archive from your own real videos "
                                                "under this folder instead: each one with a face becomes a real clip "
                                                "and its self-blended fake (SBI). --videos, --size and --kind do not "
                                                "apply. Default: none, synthetic videos."),
          videos: int = typer.Option(40, "--videos", help="Videos in all, half real and half fake."),
          frames_per_video: int = typer.Option(32, "--frames-per-video", help="Frames in each video."),
          size: str = typer.Option("128x128", "--size", help="WxH of the videos."),
          kind: str = typer.Option("portrait", "--kind", help="portrait (a real face, for face models; fakes "
                                   "self-blended) | cartoon (drawn faces, for whole-frame models)"),
          codec: str = typer.Option("h264", "--codec", help="h264 | vp9"),
          seed: int = typer.Option(0, "--seed", help="Seed of every random draw: a seed gives the same archive."),
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
    from dfscan.training.synth import SynthConfig, parse_size, synth as write_archive

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
    from dfscan.scanner.walk import walk_archive
    from dfscan.training.synth_from import FromConfig, synth_from

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
    start_keras()  # the face detector runs on TensorFlow
    result = synth_from(source, paths, out_dir, config, say=skip_line)
    skipped = ", ".join(f"{problem} {count}" for problem, count in sorted(result.counts().items()))
    typer.echo(f"wrote {len(result.videos) // 2} pairs (a real clip and its self-blended fake) from "
               f"{result.sources} videos to {out_dir}; skipped {len(result.skipped)}" + (f" ({skipped})" if skipped else ""))
    if not result.videos:
        typer.echo(f"dfscan: error: no video under {source} gave a pair: nothing to train on", err=True)
        raise typer.Exit(code=1)


# The train command's options that set a TrainConfig field of another name; the rest share their names.
_TRAIN_FIELDS = {"n_frames": "frames"}


def train(ctx: typer.Context,
          data: Path = typer.Option(..., "--data", help="Dataset root (see --layout)."),
          arch: str = typer.Option("cnn-lstm", "--arch", help="cnn-lstm | resnet50-lstm | residual-cnn"),
          out: Path = typer.Option(..., "--out", help="Run directory for model.keras and its card."),
          epochs: int = typer.Option(20, "--epochs", help="Epochs at most (early stopping keeps the best one)."),
          batch_size: int = typer.Option(32, "--batch-size", help="Videos per training batch."),
          lr: float = typer.Option(1e-4, "--lr", help="Learning rate (Adam)."),
          n_frames: int = typer.Option(20, "--frames", help="Frames per clip (F)."),
          size: Optional[int] = typer.Option(None, "--size", help="S; default 64 (cnn-lstm) or 224 (resnet50)."),
          sampling: str = typer.Option("uniform", "--sampling", help="uniform | keyframe"),
          backbone_weights: str = typer.Option("imagenet", "--backbone-weights", help="imagenet | none | PATH"),
          layout: str = _LAYOUT,
          compression: str = _FF_COMPRESSION, methods: Optional[str] = _FF_METHODS, include_dfd: bool = _FF_DFD,
          width: float = typer.Option(1.0, "--width", help="cnn-lstm channel multiplier."),
          seed: int = typer.Option(0, "--seed", help="Seed of the split, the batches and the initial weights."),
          crop: str = typer.Option("frame", "--crop", help="frame | face: what the model sees (face: a square "
                                   "around the tracked face, detected with MTCNN)."),
          face_margin: float = typer.Option(1.3, "--face-margin", help="Face crop side / face box side."),
          fail_below: Optional[float] = typer.Option(None, "--fail-below", help="Exit 1 when the test AUC is "
                                                     "below this (or cannot be measured); the run is kept. "
                                                     "Default: never."),
          recipe: Optional[str] = typer.Option(None, "--recipe", help="ff-residual: the settings docs/quality.md "
                                               "chose on FaceForensics++ (flags given here still win). "
                                               "Default: none.")):
    """Train a model on videos read through the scanner's own input pipeline."""
    from dfscan.training.faceforensics import FFOptions
    from dfscan.training.fit import SMALL_DATA_ADVICE, TrainConfig, train as fit
    from dfscan.training.models import architectures
    from dfscan.training.recipes import recipe_settings

    values = dict(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, n_frames=n_frames, size=size,
                  sampling=sampling, backbone_weights=backbone_weights, width=width, seed=seed, crop=crop,
                  face_margin=face_margin)
    settings = {_TRAIN_FIELDS.get(name, name): value for name, value in values.items()}
    if recipe is not None:  # the flags' defaults, then the recipe, then the flags given
        given = {_TRAIN_FIELDS.get(name, name): value for name, value in values.items()
                 if ctx.get_parameter_source(name).name != "DEFAULT"}  # typer vendors its own click
        try:
            settings = {**settings, **recipe_settings(recipe, given=given)}
        except ValueError as exc:
            fail_usage(str(exc))
    arch, sampling = settings["arch"], settings["sampling"]

    if arch not in architectures():
        fail_usage(f"unknown architecture {arch!r}; expected one of {', '.join(architectures())}")
    if not data.is_dir():
        fail_usage(f"dataset not found: {data}")
    from dfscan.kernels.sampling import SAMPLING_MODES

    if sampling not in SAMPLING_MODES:
        fail_usage(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
    if settings["epochs"] < 1 or settings["batch_size"] < 1 or settings["frames"] < 1 or settings["lr"] <= 0:
        fail_usage("epochs, batch size and frames must be positive, and the learning rate above 0")
    if fail_below is not None and not 0.0 <= fail_below <= 1.0:
        fail_usage(f"--fail-below is an AUC between 0 and 1, got {fail_below}")
    try:
        config = TrainConfig(data=str(data), out=str(out), layout=layout,
                             faceforensics=FFOptions.parse(compression, methods, include_dfd), **settings)
        config.resolved().clip_spec()  # bad crop, margin or size: one line, before any work
    except ValueError as exc:
        fail_usage(str(exc))
    start_keras()
    try:
        result = fit(config, say=say_on_stderr)
    except ValueError as exc:  # bad dataset, layout or weights: a message, not a traceback
        fail_usage(str(exc))
    typer.echo(json.dumps({"run_dir": result.run_dir, **result.metrics, "warnings": list(result.warnings)},
                          default=str))
    warn(result.warnings, advice=SMALL_DATA_ADVICE)
    if fail_below is not None and (result.test_auc is None or result.test_auc < fail_below):
        measured = "could not be measured" if result.test_auc is None else f"{result.test_auc:.3f}"
        typer.echo(f"dfscan: error: test AUC {measured} is below --fail-below {fail_below:g}; "
                   f"the run is kept in {result.run_dir}", err=True)
        raise typer.Exit(code=1)


def evaluate(data: Path = typer.Option(..., "--data", help="Dataset root."),
             model: Path = typer.Option(..., "--model", help="RUN_DIR/model.keras"),
             split: str = typer.Option("test", "--split", help="test | all"),
             layout: str = _LAYOUT,
             compression: str = _FF_COMPRESSION, methods: Optional[str] = _FF_METHODS, include_dfd: bool = _FF_DFD,
             plot: Optional[Path] = typer.Option(None, "--plot", help="Write a ROC curve PNG here; default: none.")):
    """Video-level metrics of a model, as one JSON object on stdout."""
    from dfscan.kernels.errors import ArtifactError
    from dfscan.training.evaluate import EvalConfig, evaluate as score
    from dfscan.training.faceforensics import FFOptions

    if split not in ("test", "all"):
        fail_usage(f"unknown split {split!r}; expected test or all")
    if not data.is_dir():
        fail_usage(f"dataset not found: {data}")
    try:
        ff_options = FFOptions.parse(compression, methods, include_dfd)
    except ValueError as exc:
        fail_usage(str(exc))
    start_keras()
    try:
        metrics = score(EvalConfig(data=str(data), model=str(model), split=split, layout=layout,
                                   faceforensics=ff_options, plot=str(plot) if plot else None), say=say_on_stderr)
    except (ArtifactError, ValueError, FileNotFoundError) as exc:
        fail_usage(str(exc))
    typer.echo(json.dumps(metrics, default=str))
    warn(metrics["warnings"])
