"""Precise batch-norm statistics: recompute each BatchNormalization layer's moving mean and variance
from dfscan.training batches before the model is validated or saved.

Why. Batch norm trains on each batch's own statistics but infers with moving averages that start at
mean 0 and variance 1 and move by (1 - momentum) per step. A small dataset gives a few steps per
epoch: on 48 videos (2 steps an epoch) the first block's moving variance was still 0.43 after six
steps, against a true 0.002, so in inference mode every clip scored about 0.47 ("real") while the
same weights in training mode separated the classes. Validation then stayed at chance from the first
epoch, early stopping restored epoch 1, and the saved model called every video real. Recomputing
the statistics as an equal-weight average over a few training batches (pycls and Detectron2 call this
"precise BN") makes inference match what was learned, however few steps were taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

PRECISE_BN_BATCHES = 16  # enough batches for a stable average; each costs one forward pass


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer, in nested models and in wrappers (TimeDistributed) too."""
    import keras

    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        stack.extend(getattr(layer, "layers", ()))  # a model's layers
        if getattr(layer, "layer", None) is not None:  # a wrapper's layer
            stack.append(layer.layer)
    return found


def recompute_batch_norm(model, batches: Sequence, count: int = PRECISE_BN_BATCHES) -> int:
    """Set the moving statistics of ``model``'s batch-norm layers to the average of their batch
    statistics over up to ``count`` of ``batches`` (each ``(x, y)``; x is (B, F, S, S, 3) uint8).
    Returns the number of batches used; 0 leaves the model untouched (no batches or no batch norm)."""
    layers = batch_norm_layers(model)
    used = min(count, len(batches))
    if not layers or used == 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    try:
        for k in range(used):
            x, _ = batches[k]
            for layer in layers:  # moving = (k * moving + batch) / (k + 1): an equal-weight average
                layer.momentum = k / (k + 1)
            model(x, training=True)  # an eager call reads the momentum anew; weights do not change
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return used


def precise_bn_callback(batches: Sequence, count: int = PRECISE_BN_BATCHES, on_done: Callable[[int], None] | None = None):
    """A Keras callback that recomputes the statistics before every validation and when training
    ends (so checkpoints, early stopping's best weights and the saved model all carry them)."""
    import keras

    class PreciseBatchNorm(keras.callbacks.Callback):
        def _recompute(self):
            used = recompute_batch_norm(self.model, batches, count)
            if on_done is not None:
                on_done(used)

        def on_test_begin(self, logs=None):
            self._recompute()

        def on_train_end(self, logs=None):
            self._recompute()

    return PreciseBatchNorm()
