"""Saving and safe loading: round trip, sha256 check, and refusal of .h5, Lambda and tampered files."""

import json
import os

import numpy as np
import pytest

from training.artifact import (
    CARD_FILE,
    MODEL_FILE,
    ArtifactError,
    load_model,
    save_keras_atomic,
    save_model,
    sha256_file,
)
from training.models import ModelConfig, build_model

F, S = 4, 32
CARD = {"name": "tiny", "arch": "cnn-lstm", "frames": F, "size": S, "sampling": "uniform", "threshold": 0.5,
        "class_names": ["real", "fake"]}


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(ModelConfig(arch="cnn-lstm", frames=F, size=S, width=0.125))


@pytest.fixture
def clips():
    return np.random.default_rng(1).integers(0, 256, (3, F, S, S, 3), dtype=np.uint8)  # (B, F, S, S, 3)


@pytest.fixture
def saved(tiny_model, tmp_path):
    card = save_model(tiny_model, tmp_path, CARD)
    return tmp_path, card


def test_save_load_predict_identical(tiny_model, saved, clips):
    run_dir, card = saved
    assert sorted(p.name for p in run_dir.iterdir()) == [CARD_FILE, MODEL_FILE]  # no temporary files left
    assert card["sha256"] == sha256_file(run_dir / MODEL_FILE)
    assert json.loads((run_dir / CARD_FILE).read_text()) == card
    loaded = load_model(run_dir / MODEL_FILE)
    assert (loaded.name, loaded.frames, loaded.size, loaded.sampling, loaded.threshold) == ("tiny", F, S, "uniform", 0.5)
    assert loaded.class_names == ("real", "fake") and loaded.fake_index == 1 and loaded.sha256 == card["sha256"]
    np.testing.assert_array_equal(np.asarray(loaded.model(clips, training=False)),
                                  np.asarray(tiny_model(clips, training=False)))
    assert load_model(run_dir).sha256 == card["sha256"]  # a run folder works too


def test_tampered_model_refused(saved):
    run_dir, _ = saved
    data = bytearray((run_dir / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run_dir / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 .* does not match"):
        load_model(run_dir / MODEL_FILE)


def test_swapped_card_refused(tiny_model, saved, tmp_path):
    run_dir, card = saved
    (run_dir / CARD_FILE).write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ArtifactError, match="does not match"):
        load_model(run_dir)


def test_missing_card_refused(tiny_model, tmp_path):
    tiny_model.save(tmp_path / MODEL_FILE)
    with pytest.raises(ArtifactError, match="no model card"):
        load_model(tmp_path / MODEL_FILE)


def test_h5_refused(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "model.h5")  # legacy HDF5, through Keras itself
    with pytest.raises(ArtifactError, match=r"HDF5 \(\.h5\)"):
        load_model(tmp_path / "model.h5")
    # the same bytes renamed .keras, even with a card that records their sha256
    os.replace(tmp_path / "model.h5", tmp_path / MODEL_FILE)
    (tmp_path / CARD_FILE).write_text(json.dumps({**CARD, "sha256": sha256_file(tmp_path / MODEL_FILE)}))
    with pytest.raises(ArtifactError, match="not a zip"):
        load_model(tmp_path / MODEL_FILE)


def test_lambda_layer_refused(tmp_path):
    import keras

    inputs = keras.Input((F, S, S, 3), dtype="uint8")
    x = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32") / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    save_model(keras.Model(inputs, outputs), tmp_path, CARD)  # a genuine card: the sha256 matches
    with pytest.raises(ArtifactError, match="Lambda"):
        load_model(tmp_path)


def test_atomic_save_keeps_the_previous_file(tiny_model, saved, monkeypatch):
    run_dir, card = saved
    before = (run_dir / MODEL_FILE).read_bytes()

    def crash(model, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a zip")
        raise KeyboardInterrupt  # killed mid-save

    monkeypatch.setattr(type(tiny_model), "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_keras_atomic(tiny_model, run_dir / MODEL_FILE)
    assert (run_dir / MODEL_FILE).read_bytes() == before
    assert sorted(p.name for p in run_dir.iterdir()) == [CARD_FILE, MODEL_FILE]
    assert load_model(run_dir).sha256 == card["sha256"]


def test_resnet_round_trip_in_safe_mode(tmp_path):
    """TimeDistributed(ResNet50) and the frozen preprocessing layer survive safe-mode loading."""
    model = build_model(ModelConfig(arch="resnet50-lstm", frames=2, size=32, backbone_weights="none"))
    save_model(model, tmp_path, {**CARD, "arch": "resnet50-lstm", "frames": 2})
    loaded = load_model(tmp_path)
    x = np.random.default_rng(2).integers(0, 256, (1, 2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(loaded.model(x, training=False)), np.asarray(model(x, training=False)))
    def frozen(m):  # which backbone layers with weights are frozen
        return [layer.name for layer in m.get_layer("resnet50").layer.layers if layer.weights and not layer.trainable]

    assert frozen(loaded.model) == frozen(model) and len(frozen(model)) > 50  # the freeze survives the file
