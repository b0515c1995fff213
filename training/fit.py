"""Training: one function, ``train(TrainConfig)``, that leaves a complete, reproducible run folder.

RUN_DIR after a successful run holds exactly: model.keras, model.json (the model card, with the
sha256 of model.keras), config.json (the resolved config), split.json, history.csv, metrics.json,
roc.png and training.png. While training, checkpoint.keras holds the best weights so far; it is
written atomically (temporary file + os.replace) and removed once model.keras is in place.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dfscan.kernels.artifact import save_keras_atomic, save_model

from dfscan.kernels.atomic import write_json_atomic

from dfscan.kernels.card import FACE_SPEC_FIELDS, MAX_FRAMES, MAX_SIZE, fake_index

from dfscan.kernels.provenance import library_versions
from dfscan.kernels.atomic import atomic_path, atomic_write_bytes
from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.csv_text import csv_text
from dfscan.kernels.decode import gpu_count
from dfscan.kernels.faces import DetectionCache
from dfscan.kernels.predict import CompiledPredictor
from dfscan.kernels.scope import measure_scope
from dfscan.kernels.trust import grave_warnings, metric_warnings
from dfscan.training.augment import AugmentConfig
from dfscan.training.batches import ClipBatches
from dfscan.training.blend_twins import TwinSource, twin_items
from dfscan.training.clip_cache import ClipSource
from dfscan.training.evaluate import SPLIT_FILE, score_items
from dfscan.training.faceforensics import FFOptions
from dfscan.training.layouts import REAL, scan_dataset
from dfscan.training.models import (CLASS_NAMES, INPUT_NORMALISATION, ModelConfig, build_model, check_spatial_crop,
                                    training_view)
from dfscan.training.precise_bn import precise_bn_callback
from dfscan.training.recipes import RECIPES
from dfscan.training.splits import make_split, save_split, summarise

CHECKPOINT_FILE = "checkpoint.keras"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    arch: str = "cnn-lstm"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-4
    frames: int = 20
    size: int | None = None  # None: the architecture's default (64 for cnn-lstm, 224 for resnet50-lstm)
    sampling: str = "uniform"
    crop: str = "frame"  # "frame": whole frames; "face": a square around the tracked face (kernels.faces)
    face_margin: float = 1.3  # the face crop's side, as a multiple of the face box's longer side
    face_detect_frames: int = ClipSpec.face_detect_frames  # recorded in the card, read by every consumer
    face_detect_size: int = ClipSpec.face_detect_size
    backbone_weights: str = "imagenet"
    seed: int = 0
    layout: str = "auto"
    faceforensics: FFOptions = FFOptions()  # layout faceforensics: compression, methods, DeepFakeDetection
    decoder: str = "auto"
    width: float = 1.0  # cnn-lstm filter/unit multiplier
    test_fraction: float = 0.2  # without an official test list
    val_fraction: float = 0.1  # of what is left for training
    steps_per_epoch: int | None = None  # None: one pass over the training videos' worth of batches
    augment: bool = True
    max_temporal_offset: int = 2
    spatial_crop: int = 0  # training sees random CxC squares of each frame (fully convolutional archs only)
    photometric: bool = True  # brightness and contrast jitter in training
    self_blend: float = 0.0  # crop=face: each training real also trains as a self-blended fake of this
    # strength (training.blend_twins; SBI's ranges at 1); 0: none
    early_stopping_patience: int = 5
    lr_patience: int = 2
    threshold: float = 0.5
    cache_mb: int = 2048
    jit_compile: bool | None = None  # None: XLA-compiled training on a GPU only (on a CPU the compile
    # costs more than it saves); inference is always XLA-compiled (kernels.predict)
    verbose: int = 1  # 1: a progress bar per epoch; 0: silent
    recipe: str | None = None  # the training.recipes entry these settings came from, if any

    def clip_spec(self) -> ClipSpec:
        """How training reads its clips; the card records the same settings for every consumer."""
        return ClipSpec(frames=self.frames, size=self.size, sampling=self.sampling, decoder=self.decoder,
                        crop=self.crop, face_margin=self.face_margin, face_detect_frames=self.face_detect_frames,
                        face_detect_size=self.face_detect_size)

    def model_config(self) -> ModelConfig:
        return ModelConfig(arch=self.arch, frames=self.frames, size=self.size, width=self.width,
                           backbone_weights=self.backbone_weights)

    def resolved(self) -> TrainConfig:
        """The config with its size decided; ValueError for settings that cannot go together."""
        size = ModelConfig(arch=self.arch, size=self.size).resolved_size()
        if self.frames > MAX_FRAMES or size > MAX_SIZE:  # the scanner would refuse the model it makes
            raise ValueError(f"dfscan reads at most {MAX_FRAMES} frames of at most {MAX_SIZE} pixels; got "
                             f"{self.frames} frames of {size} pixels")
        if self.spatial_crop:  # refused here, before any video is read, as training_view would refuse it
            check_spatial_crop(self.arch, size, self.spatial_crop)
        if self.self_blend and self.crop != "face":
            raise ValueError("self-blended twins need face crops (--crop face): the blend is made around the face")
        if not 0.0 <= self.self_blend <= 3.0:
            raise ValueError(f"the self-blend strength must be between 0 and 3, got {self.self_blend}")
        return dataclasses.replace(self, size=size)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run_dir: str
    card: dict
    metrics: dict
    history: dict[str, list[float]]
    warnings: tuple[str, ...] = ()  # plain words: why this model should not be trusted (kernels.trust)

    @property
    def test_auc(self) -> float | None:
        return self.metrics["test"].get("roc_auc")


# What to try when a run learned nothing: the settings `dfscan demo` learns 240 small videos with.
SMALL_DATA_ADVICE = ("train on more videos (hundreds per class), or try the small-data settings of `dfscan demo`: "
                     "--frames 8 --size 32 --width 0.25 --lr 1e-3")


def _distribution_scope(gpus: int):
    """MirroredStrategy over every GPU when there are several (TensorFlow backend); else a no-op."""
    import contextlib

    import keras

    if gpus > 1 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def _keras_dataset(batches: ClipBatches):
    """Wrap the framework-free batch source as a Keras PyDataset (decoding stays in this thread:
    ClipReader and the clip cache are not shared across threads)."""
    import keras

    class _Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)

        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index]

        def on_epoch_end(self):
            batches.on_epoch_end()

    return _Batches()


def _atomic_checkpoint(path: Path, monitor: str, model):
    import keras

    class AtomicCheckpoint(keras.callbacks.Callback):
        """Saves the best ``model`` so far (the one to scan with, which shares the fitted model's
        weights); a kill mid-save leaves the previous checkpoint whole."""

        best = np.inf

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is not None and value < self.best:
                self.best = value
                save_keras_atomic(model, path)

    return AtomicCheckpoint()


def _write_history(history: dict[str, list[float]], path: Path) -> None:
    keys = list(history)
    epochs = len(history[keys[0]]) if keys else 0
    rows = [[epoch + 1, *[f"{history[k][epoch]:.6g}" for k in keys]] for epoch in range(epochs)]
    atomic_write_bytes(path, csv_text(["epoch", *keys], rows).encode())


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, training and validation."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for position, metric in enumerate(("loss", "accuracy"), start=1):
        ax = fig.add_subplot(1, 2, position)
        for key in (metric, f"val_{metric}"):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
        ax.set(xlabel="epoch", title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=Path(path).suffix) as temporary:
        fig.savefig(temporary)


def _compiled_model(config: TrainConfig, gpus: int):
    """Build under the right precision and distribution for this machine: (the model to save, the
    compiled model to fit). They share every layer; with spatial crops the second takes frames of any
    size (models.training_view), otherwise they are one model."""
    import keras

    previous_policy = keras.config.dtype_policy()
    if gpus:  # bfloat16 matmuls on the GPU; the softmax layer stays float32 (see models.py)
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        with _distribution_scope(gpus):
            model_config = config.model_config()
            model = build_model(model_config)
            fitted = training_view(model, model_config, config.spatial_crop if config.augment else 0)
            fitted.compile(optimizer=keras.optimizers.Adam(config.lr), loss="categorical_crossentropy",
                           metrics=["accuracy"],
                           jit_compile=bool(gpus) if config.jit_compile is None else config.jit_compile)
    finally:
        keras.config.set_dtype_policy(previous_policy)  # later builds in this process are unaffected
    return model, fitted


def _callbacks(config: TrainConfig, run_dir: Path, monitor: str, train_batches: ClipBatches, model) -> list:
    import keras

    return [
        # First: validation, checkpoints and early stopping's best weights all see precise statistics.
        precise_bn_callback(train_batches),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=config.lr_patience, min_lr=1e-6,
                                          verbose=config.verbose),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience,
                                      restore_best_weights=True, verbose=config.verbose),
        _atomic_checkpoint(run_dir / CHECKPOINT_FILE, monitor, model),
    ]


def face_settings(spec: ClipSpec, detector) -> dict:
    """The card's "face" object: what kernels.artifact.ModelCard.clip_settings gives back to readers."""
    settings = {key: getattr(spec, field) for key, field in FACE_SPEC_FIELDS.items()}
    settings["detect_frames"] = min(spec.face_detect_frames, spec.frames)  # the frames really detected on
    return {"detector": detector.name, "detector_version": detector.version, **settings}


def model_card(config: TrainConfig, run_dir: Path, dataset_summary: dict, metrics: dict, detector=None,
               scope: dict | None = None) -> dict:
    """Everything a scanner or a reader needs to know about the model (the sha256 is added on save);
    ``scope``: what it was trained and tested on (``kernels.scope.measure_scope``)."""
    return {
        "name": f"{config.arch}-{run_dir.resolve().name}",
        "arch": config.arch,
        "frames": config.frames,
        "size": config.size,
        "sampling": config.sampling,
        "class_names": list(CLASS_NAMES),
        "fake_index": fake_index(CLASS_NAMES),
        "threshold": config.threshold,
        "input": {"dtype": "uint8", "shape": [None, config.frames, config.size, config.size, 3],
                  "channels": "RGB", "decoder": config.decoder,
                  "resize": "whole frame squashed to SxS (kernels.resize)" if config.crop == "frame" else
                  ("square of margin x the tracked face box, cut from the full-resolution frame (black past its "
                   "edge), resized to SxS")},
        "crop": config.crop,
        **({"face": face_settings(config.clip_spec(), detector)} if config.crop == "face" else {}),
        "input_normalisation": INPUT_NORMALISATION[config.arch],
        "width": config.width,
        "backbone_weights": config.backbone_weights if config.arch == "resnet50-lstm" else None,
        "dataset": dataset_summary,
        "scope": scope,
        "split_file": SPLIT_FILE,
        "metrics": {"test": metrics["test"], "val": metrics.get("val")},
        "training": metrics["training"],
        "versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def train(config: TrainConfig, say: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``config.arch`` on ``config.data`` and write the run folder ``config.out``; ``say`` gets the
    layout's notes (what it used and left out) before training starts."""
    import keras

    started = time.monotonic()
    config = config.resolved()
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", dataclasses.asdict(config))
    keras.utils.set_random_seed(config.seed)

    dataset = scan_dataset(config.data, config.layout, config.faceforensics)
    for note in dataset.notes if say else ():
        say(note)
    split = make_split(dataset, seed=config.seed, test_fraction=config.test_fraction,
                       val_fraction=config.val_fraction)
    save_split(split, run_dir / SPLIT_FILE)
    part_of = {path: name for name in ("train", "val", "test") for path in getattr(split, name)}
    part = {name: [item for item in dataset.items if part_of.get(item.path) == name]
            for name in ("train", "val", "test")}

    # One reader for the whole run: the scanner's pipeline, the card's frames, size and sampling.
    reader = ClipReader(config.clip_spec(), probe_cache=len(dataset.items),
                        detection_cache=DetectionCache() if config.crop == "face" else None)
    source = ClipSource(reader, dataset.root, max_cache_bytes=config.cache_mb << 20)
    if config.recipe in RECIPES and say:  # before the videos are read, which is a good part of the time
        reals = sum(item.label == REAL for item in part["train"]) if config.self_blend else 0  # at most one twin each
        say(RECIPES[config.recipe].estimate_line(*(len(part[name]) for name in ("train", "val", "test")), twins=reals))
    train_items = source.readable(part["train"])
    val_items = source.readable(part["val"])
    if len({item.label for item in train_items}) < 2:
        raise ValueError(f"training needs readable real and fake videos; {dataset.root} has "
                         f"{len(train_items)} readable training videos of one class or none")

    augment = (AugmentConfig(max_offset=config.max_temporal_offset, spatial_crop=config.spatial_crop,
                             **({} if config.photometric else {"brightness": 0.0, "contrast": 0.0}))
               if config.augment else None)
    twins = twin_items(train_items, source.facts) if config.self_blend else []
    train_source = TwinSource(source, config.self_blend, config.face_margin, config.seed) if twins else source
    train_batches = ClipBatches(train_source, train_items + twins, config.batch_size, balanced=True, augment=augment,
                                seed=config.seed, steps=config.steps_per_epoch)
    val_batches = ClipBatches(source, val_items, config.batch_size) if val_items else None
    monitor = "val_loss" if val_batches else "loss"

    model, fitted = _compiled_model(config, gpu_count())
    fit_started = time.monotonic()
    history = fitted.fit(_keras_dataset(train_batches), epochs=config.epochs,
                         callbacks=_callbacks(config, run_dir, monitor, train_batches, model),
                         validation_data=_keras_dataset(val_batches) if val_batches else None,
                         verbose=config.verbose).history  # EarlyStopping restored the best weights
    fit_seconds = time.monotonic() - fit_started
    history = {k: [float(v) for v in values] for k, values in history.items()}

    # Scored through the scanner's own compiled predict step, so the card's numbers are the scanner's.
    predictor = CompiledPredictor(model, config.batch_size, config.frames, config.size,
                                  fake_index=fake_index(CLASS_NAMES))
    metrics = {"test": score_items(predictor, source, part["test"], threshold=config.threshold,
                                   plot=run_dir / "roc.png", title=f"{config.arch}: test ({split.method})")}
    if val_items:
        metrics["val"] = score_items(predictor, source, val_items, threshold=config.threshold)
    losses = history.get(monitor, [])
    metrics["training"] = {
        "epochs_run": len(losses), "best_epoch": int(np.argmin(losses)) + 1 if losses else None,
        "fit_seconds": round(fit_seconds, 2), "seconds": round(time.monotonic() - started, 2),
        "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed,
        "augment": dataclasses.asdict(augment) if augment else None, "unreadable": len(source.errors),
        "self_blended_twins": len(twins)}
    write_json_atomic(run_dir / "metrics.json", metrics)
    _write_history(history, run_dir / "history.csv")
    plot_history(history, run_dir / "training.png", f"{config.arch} on {Path(dataset.root).name}")

    summary = summarise(dataset, split)
    scope = measure_scope(
        data="synthetic" if dataset.synthetic else ("both" if twins else "real"), dataset=Path(dataset.root).name,
        layout=dataset.layout,
        videos={name: summary[name] for name in ("train", "val", "test")}, test_metrics=metrics["test"],
        train_facts=[source.facts[i.path] for i in train_items if i.path in source.facts],
        test_facts=[source.facts[i.path] for i in part["test"] if i.path in source.facts],
        face_model=config.crop == "face")
    card = save_model(model, run_dir, model_card(config, run_dir, summary, metrics,
                                                 reader.face_detector if config.crop == "face" else None, scope))
    (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)  # model.keras now holds the best weights
    warnings = metric_warnings(metrics["test"], "test") + grave_warnings(metrics.get("val"), "val")
    return TrainResult(run_dir=str(run_dir), card=card, metrics=metrics, history=history, warnings=tuple(warnings))
