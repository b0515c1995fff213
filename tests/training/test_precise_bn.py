"""Precise batch-norm statistics: the moving averages become the batches' equal-weight average."""

import numpy as np

from dfscan.training.precise_bn import batch_norm_layers, recompute_batch_norm


def test_moving_statistics_become_the_average_of_the_batch_statistics():
    import keras

    inputs = keras.Input((6, 4))
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(3))(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(loc=5.0 + k, scale=0.1 * (k + 1), size=(8, 6, 4)).astype("float32"), None)
               for k in range(5)]
    (bn,) = batch_norm_layers(model)
    assert np.allclose(bn.moving_variance.numpy(), 1.0)  # where a short run leaves them, nearly
    assert recompute_batch_norm(model, batches, count=3) == 3
    means = [x.reshape(-1, 4).mean(axis=0) for x, _ in batches[:3]]
    variances = [x.reshape(-1, 4).var(axis=0) for x, _ in batches[:3]]
    assert np.allclose(bn.moving_mean.numpy(), np.mean(means, axis=0), atol=1e-4)
    assert np.allclose(bn.moving_variance.numpy(), np.mean(variances, axis=0), rtol=1e-3)
    assert bn.momentum == 0.9  # restored
    # In inference mode the layer now normalises like in training: outputs near mean 0, variance 1.
    out = np.asarray(model.layers[1](batches[1][0], training=False))
    assert abs(out.mean()) < 0.1 and 0.5 < out.std() < 1.5


def test_nothing_to_do_leaves_the_model_alone():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert recompute_batch_norm(model, [(np.zeros((2, 4), "float32"), None)]) == 0
    assert batch_norm_layers(model) == []
