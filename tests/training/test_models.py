"""Every architecture builds from built-in layers, compiles with XLA and predicts on tiny shapes; the
residual CNN sees only its frozen high-pass residual and scores a video as the mean of its frames."""

import numpy as np
import pytest

from dfscan.training.models import (
    CLASS_NAMES,
    RESNET50_WEIGHTS_FILE,
    ModelConfig,
    architectures,
    build_model,
    resolve_backbone_weights,
    training_view,
)

F, S = 8, 32
TINY = {"cnn-lstm": ModelConfig(arch="cnn-lstm", frames=F, size=S, width=0.25),
        "resnet50-lstm": ModelConfig(arch="resnet50-lstm", frames=F, size=S, backbone_weights="none"),
        "residual-cnn": ModelConfig(arch="residual-cnn", frames=F, size=S + 8, width=0.5)}  # its smallest: 34


def _clips(n: int, seed: int = 0, size: int = S) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, F, size, size, 3), dtype=np.uint8)  # (B, F, S, S, 3)


def _all_layers(model):
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        yield layer
        for attr in ("layer", "forward_layer", "backward_layer"):  # TimeDistributed, Bidirectional
            if hasattr(layer, attr):
                stack.append(getattr(layer, attr))
        stack.extend(getattr(layer, "layers", []))


def test_registry_lists_all_three():
    assert architectures() == ("cnn-lstm", "resnet50-lstm", "residual-cnn")
    assert CLASS_NAMES == ("real", "fake")
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model(ModelConfig(arch="vit"))


@pytest.mark.parametrize("arch", ["cnn-lstm", "resnet50-lstm", "residual-cnn"])
def test_builds_compiles_with_xla_and_predicts(arch):
    from dfscan.kernels.predict import CompiledPredictor

    model = build_model(TINY[arch])
    size = TINY[arch].resolved_size()
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape) == (None, F, size, size, 3)
    assert tuple(model.outputs[0].shape) == (None, 2)
    # the scanner's step: one XLA-compiled function at one fixed batch shape
    predictor = CompiledPredictor(model, batch_size=2, frames=F, size=size, jit_compile=True)
    x = _clips(2, size=size)
    p_fake = predictor.predict(x)  # (2,) through XLA
    probs = np.asarray(model(x, training=False))  # (2, 2), not compiled
    assert probs.shape == (2, 2) and np.isfinite(probs).all() and np.isfinite(p_fake).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(p_fake, probs[:, 1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predictor.predict(x[:1]), p_fake[:1], rtol=1e-6)  # a padded batch, no recompile
    lstms = [layer for layer in _all_layers(model) if type(layer).__name__ == "LSTM"]
    # cuDNN LSTM does not compile under XLA
    assert bool(lstms) == (arch != "residual-cnn") and all(layer.use_cudnn is False for layer in lstms)
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


def test_the_residual_cnn_sees_only_the_residual_and_averages_its_frames(tmp_path):
    """The frozen high-pass removes what is flat: frames of any one grey level score alike. A video's
    probabilities are the mean of its frames' own, and the file loads in safe mode with equal outputs."""
    import keras

    R = TINY["residual-cnn"].resolved_size()
    model = build_model(TINY["residual-cnn"])
    high_pass = [layer for layer in _all_layers(model) if layer.name == "high_pass"]
    assert len(high_pass) == 1 and not high_pass[0].trainable
    greys = np.stack([np.full((F, R, R, 3), level, dtype=np.uint8) for level in (0, 90, 255)])  # (3, F, R, R, 3)
    flat = np.asarray(model(greys, training=False))  # (3, 2)
    np.testing.assert_allclose(flat, np.repeat(flat[:1], 3, axis=0), atol=1e-6)
    x = _clips(2, seed=3, size=R)
    x[:, ::2, :, : R // 2] //= 4  # frames that differ in texture, so their scores differ
    videos = np.asarray(model(x, training=False))  # (2, 2)
    frame_net = model.get_layer("per_frame").layer
    frames = np.asarray(frame_net(x.reshape(-1, R, R, 3), training=False)).reshape(2, F, 2)  # (2, F, 2)
    assert np.ptp(frames[..., 1]) > 0
    np.testing.assert_allclose(videos, frames.mean(axis=1), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "residual.keras")
    loaded = keras.saving.load_model(tmp_path / "residual.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), videos, rtol=1e-5, atol=1e-6)


def test_the_training_view_takes_crops_and_shares_every_weight():
    """What is fitted on small crops is what scans the whole square: one set of weights."""
    config = TINY["residual-cnn"]
    model = build_model(config)
    view = training_view(model, config, spatial_crop=34)
    assert tuple(view.inputs[0].shape) == (None, F, None, None, 3)
    assert {id(w) for w in view.weights} == {id(w) for w in model.weights}
    x = _clips(1, seed=4, size=config.resolved_size())
    np.testing.assert_allclose(np.asarray(view(x[:, :, :34, :34])).sum(), 1.0, atol=1e-5)  # a 34-pixel crop scores
    np.testing.assert_allclose(np.asarray(view(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    moved = [w.numpy() + 0.01 for w in view.trainable_weights]
    for weight, value in zip(view.trainable_weights, moved):
        weight.assign(value)
    np.testing.assert_allclose(model.get_layer("per_frame").layer.get_layer("frame_probs").kernel.numpy(),
                               moved[-2], rtol=1e-6)
    assert training_view(model, config, spatial_crop=0) is model
    with pytest.raises(ValueError, match="fully convolutional"):
        training_view(build_model(TINY["cnn-lstm"]), TINY["cnn-lstm"], spatial_crop=16)
    with pytest.raises(ValueError, match="takes spatial crops of 34 to 39 pixels, not 33"):
        training_view(model, config, spatial_crop=33)
    with pytest.raises(ValueError, match="takes spatial crops of 34 to 39 pixels, not 40"):
        training_view(model, config, spatial_crop=40)  # the frame's own size is no crop
    with pytest.raises(ValueError, match="at least 34 pixels, got 32"):
        build_model(ModelConfig(arch="residual-cnn", frames=F, size=32))
