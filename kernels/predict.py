"""The compiled predict step: one XLA-compiled function of one fixed batch shape per worker, and
``load_predictor``, the one way from a model file to that step.

Every batch is padded to the same (B, F, S, S, 3) shape, so the function compiles once at warm-up
and never again mid-scan; padding rows are thrown away. On dali-gpu the frames arrive as a GPU
tensor through DLPack and never visit the host.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from dfscan.kernels.artifact import LoadedModel, ModelRecord, load_model

from dfscan.kernels.card import ModelCard

from dfscan.kernels.errors import ArtifactError, ArtifactProblem
from dfscan.kernels.sampling import SAMPLING_MODES


class CompiledPredictor:
    # fake_index: the output column of p(fake). A model from a file takes it from its card
    # (kernels.artifact.fake_index); the default is that column for dfscan's own architectures, for
    # callers that build an untrained model in memory only to time it.
    def __init__(self, model, batch_size: int, frames: int, size: int, fake_index: int = 1,
                 jit_compile: bool = True):
        import keras

        self.model = model
        self.batch_size = batch_size
        self.shape = (batch_size, frames, size, size, 3)
        self.fake_index = fake_index
        self.jit_compile = jit_compile
        self._step = self._compile(keras.backend.backend())

    def _compile(self, backend: str):
        model = self.model
        if backend == "tensorflow":
            import tensorflow as tf

            @tf.function(jit_compile=self.jit_compile, reduce_retracing=True)
            def step(frames):  # (B, F, S, S, 3) uint8 -> (B, 2) float
                return model(frames, training=False)

            return step
        if backend == "jax":
            import jax

            def step(trainable, non_trainable, frames):
                outputs, _ = model.stateless_call(trainable, non_trainable, frames, training=False)
                return outputs

            compiled = jax.jit(step)
            device = jax.devices()[0]
            # jax.jit takes arrays, not Keras variables (jax >= 0.10 refuses to abstractify them), and
            # reading the values at each call keeps the step right after the weights change (training).
            # Host batches and GPU decoders' batches both go in as arrays committed to the device:
            # otherwise the first GPU batch after a host warm-up recompiles (18 s for resnet50-lstm).
            return lambda frames: compiled([v.value for v in model.trainable_variables],
                                           [v.value for v in model.non_trainable_variables],
                                           jax.device_put(frames, device))
        return lambda frames: model(frames, training=False)

    def _pad(self, frames):
        count = int(frames.shape[0])
        if count > self.batch_size:
            raise ValueError(f"a batch of {count} does not fit the compiled batch of {self.batch_size}")
        if tuple(frames.shape[1:]) != self.shape[1:]:
            raise ValueError(f"frames of shape {tuple(frames.shape)} do not match the compiled {self.shape}")
        if count == self.batch_size:
            return frames, count
        if isinstance(frames, np.ndarray):
            padded = np.zeros(self.shape, dtype=np.uint8)
            padded[:count] = frames
            return padded, count
        import keras

        pad = keras.ops.zeros((self.batch_size - count, *self.shape[1:]), dtype="uint8")
        return keras.ops.concatenate([frames, pad], axis=0), count

    def predict(self, frames) -> np.ndarray:
        """p(fake) for each clip.  (n, F, S, S, 3) uint8 -> (n,) float32"""
        padded, count = self._pad(frames)
        probabilities = np.asarray(self._step(padded), dtype=np.float32)  # (B, 2)
        return probabilities[:count, self.fake_index]

    def warm_up(self) -> None:
        self.predict(np.zeros(self.shape, dtype=np.uint8))


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A checked model file compiled at one batch shape, with the sampling and threshold its consumer
    reads clips and draws verdicts with (the card's, unless that consumer was told otherwise)."""

    loaded: LoadedModel
    step: CompiledPredictor
    sampling: str
    threshold: float

    @property
    def card(self) -> ModelCard:
        return self.loaded.card

    @property
    def batch_size(self) -> int:
        return self.step.batch_size

    def predict(self, frames) -> np.ndarray:
        """p(fake) for each clip.  (n <= batch_size, F, S, S, 3) uint8 -> (n,) float32"""
        return self.step.predict(frames)

    def warm_up(self) -> None:
        self.step.warm_up()


def load_predictor(path: str | os.PathLike, batch_size: int, *, sampling: str | None = None,
                   threshold: float | None = None) -> Predictor:
    """A ready predictor from ``RUN_DIR`` or ``RUN_DIR/model.keras``: the file and its sha256 are
    checked against the card (``kernels.artifact.load_model``), and F, S, the fake index, the sampling
    and the threshold come from the card. ``sampling``/``threshold`` override the card's for this
    consumer. Raises ``ArtifactError`` for a refused file, ``ValueError`` for an unknown sampling.

    The step compiles on its first batch; call ``warm_up()`` to pay for that up front.
    """
    if sampling is not None and sampling not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
    loaded = load_model(path)
    card = loaded.card
    step = CompiledPredictor(loaded.model, batch_size, card.frames, card.size, fake_index=card.fake_index)
    return Predictor(loaded=loaded, step=step, sampling=card.sampling if sampling is None else sampling,
                     threshold=card.threshold if threshold is None else float(threshold))


def load_decided(record: ModelRecord, batch_size: int) -> Predictor:
    """The predictor of a model decided elsewhere (``kernels.artifact.decide_model``, the scan's driver):
    loaded and checked as ``load_predictor`` does, and refused unless the file still has the sha256 the
    record was decided with (replaced mid-run: ``ArtifactError`` SHA256_MISMATCH)."""
    loaded = load_model(record.path)
    if loaded.card.sha256 != record.sha256:
        raise ArtifactError(ArtifactProblem.SHA256_MISMATCH,
                            f"{Path(record.path).name}: sha256 {loaded.card.sha256[:16]}... is not the "
                            f"{record.sha256[:16]}... this run decided on; the model was replaced during the run")
    card = loaded.card
    step = CompiledPredictor(loaded.model, batch_size, card.frames, card.size, fake_index=card.fake_index)
    return Predictor(loaded=loaded, step=step, sampling=record.sampling, threshold=record.threshold)
