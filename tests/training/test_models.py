"""Both architectures build from built-in layers, compile with XLA and predict on tiny shapes."""

import numpy as np
import pytest

from dfscan.training.models import (
    CLASS_NAMES,
    RESNET50_WEIGHTS_FILE,
    ModelConfig,
    architectures,
    build_model,
    resolve_backbone_weights,
)

F, S = 8, 32
TINY = {"cnn-lstm": ModelConfig(arch="cnn-lstm", frames=F, size=S, width=0.25),
        "resnet50-lstm": ModelConfig(arch="resnet50-lstm", frames=F, size=S, backbone_weights="none")}


def _clips(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, F, S, S, 3), dtype=np.uint8)  # (B, F, S, S, 3)


def _all_layers(model):
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        yield layer
        for attr in ("layer", "forward_layer", "backward_layer"):  # TimeDistributed, Bidirectional
            if hasattr(layer, attr):
                stack.append(getattr(layer, attr))
        stack.extend(getattr(layer, "layers", []))


def test_registry_lists_both():
    assert architectures() == ("cnn-lstm", "resnet50-lstm")
    assert CLASS_NAMES == ("real", "fake")
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model(ModelConfig(arch="vit"))


@pytest.mark.parametrize("arch", ["cnn-lstm", "resnet50-lstm"])
def test_builds_compiles_with_xla_and_predicts(arch):
    from dfscan.kernels.predict import CompiledPredictor

    model = build_model(TINY[arch])
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape) == (None, F, S, S, 3)
    assert tuple(model.outputs[0].shape) == (None, 2)
    # the scanner's step: one XLA-compiled function at one fixed batch shape
    predictor = CompiledPredictor(model, batch_size=2, frames=F, size=S, jit_compile=True)
    x = _clips(2)
    p_fake = predictor.predict(x)  # (2,) through XLA
    probs = np.asarray(model(x, training=False))  # (2, 2), not compiled
    assert probs.shape == (2, 2) and np.isfinite(probs).all() and np.isfinite(p_fake).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p_fake, probs[:, 1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predictor.predict(x[:1]), p_fake[:1], rtol=1e-6)  # a padded batch, no recompile
    lstms = [layer for layer in _all_layers(model) if type(layer).__name__ == "LSTM"]
    assert lstms and all(layer.use_cudnn is False for layer in lstms)  # cuDNN LSTM does not compile under XLA
    # built-in layers only: every layer class comes from Keras itself
    assert all(type(layer).__module__.startswith("keras.") for layer in _all_layers(model))


def test_input_is_normalised_inside_the_model():
    model = build_model(TINY["cnn-lstm"])
    rescale = model.get_layer("rescale")
    assert rescale.scale == pytest.approx(1 / 255)


def test_resnet_trains_only_the_last_50_backbone_layers():
    model = build_model(TINY["resnet50-lstm"])
    backbone = model.get_layer("resnet50").layer
    flags = [layer.trainable for layer in backbone.layers]
    assert all(flags[-50:]) and not any(flags[:-50])
    # the caffe preprocessing is a frozen linear map: RGB -> BGR minus the ImageNet means
    kernel, bias = model.get_layer("caffe_preprocess").get_weights()
    assert not model.get_layer("caffe_preprocess").trainable
    rgb = np.array([[10.0, 20.0, 30.0]], dtype=np.float32)
    np.testing.assert_allclose(rgb @ kernel + bias, [[30 - 103.939, 20 - 116.779, 10 - 123.68]], rtol=1e-5)


def test_imagenet_weights_missing_offline_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        resolve_backbone_weights("imagenet", allow_download=False)
    message = str(info.value)
    assert RESNET50_WEIGHTS_FILE in message and str(tmp_path / "models") in message
    assert "--backbone-weights none" in message
    # once the file is placed there, it is used without any download
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / RESNET50_WEIGHTS_FILE).write_bytes(b"placeholder")
    assert resolve_backbone_weights("imagenet", allow_download=False) == str(tmp_path / "models" / RESNET50_WEIGHTS_FILE)
    assert resolve_backbone_weights("none") is None
    with pytest.raises(FileNotFoundError):
        resolve_backbone_weights(str(tmp_path / "nope.h5"))
