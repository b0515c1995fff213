"""Saving and safe loading: round trip, sha256 check, and refusal of .h5, Lambda and tampered files;
the one loader from a model file to a compiled predictor, and what it takes from the card."""

import json
import os

import numpy as np
import pytest

from dfscan.kernels.artifact import load_model, save_keras_atomic, save_model, sha256_file, verify_model

from dfscan.kernels.card import CARD_FILE, MODEL_FILE, load_card

from dfscan.kernels.errors import ArtifactError, ArtifactProblem
from dfscan.kernels.predict import load_predictor
from dfscan.training.models import ModelConfig, build_model

F, S = 4, 32
CARD = {"name": "tiny", "arch": "cnn-lstm", "frames": F, "size": S, "sampling": "uniform", "threshold": 0.5,
        "class_names": ["real", "fake"]}


@pytest.fixture(scope="module")
def unsaved_keras_model():
    """A small cnn-lstm built in memory, not saved (tests/scanner/conftest.py's tiny_model is a saved file)."""
    return build_model(ModelConfig(arch="cnn-lstm", frames=F, size=S, width=0.125))


@pytest.fixture
def clips():
    return np.random.default_rng(1).integers(0, 256, (3, F, S, S, 3), dtype=np.uint8)  # (B, F, S, S, 3)


@pytest.fixture
def saved(unsaved_keras_model, tmp_path):
    card = save_model(unsaved_keras_model, tmp_path, CARD)
    return tmp_path, card


def test_save_load_predict_identical(unsaved_keras_model, saved, clips):
    run_dir, card = saved
    assert sorted(p.name for p in run_dir.iterdir()) == [CARD_FILE, MODEL_FILE]  # no temporary files left
    assert card["sha256"] == sha256_file(run_dir / MODEL_FILE)
    assert json.loads((run_dir / CARD_FILE).read_text()) == card
    loaded = load_model(run_dir / MODEL_FILE)
    assert (loaded.name, loaded.frames, loaded.size, loaded.sampling, loaded.threshold) == ("tiny", F, S, "uniform", 0.5)
    assert loaded.class_names == ("real", "fake") and loaded.fake_index == 1 and loaded.sha256 == card["sha256"]
    np.testing.assert_array_equal(np.asarray(loaded.model(clips, training=False)),
                                  np.asarray(unsaved_keras_model(clips, training=False)))
    assert load_model(run_dir).sha256 == card["sha256"]  # a run folder works too


def test_tampered_model_refused(saved):
    run_dir, _ = saved
    data = bytearray((run_dir / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run_dir / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 .* does not match"):
        load_model(run_dir / MODEL_FILE)


def test_swapped_card_refused(unsaved_keras_model, saved, tmp_path):
    run_dir, card = saved
    (run_dir / CARD_FILE).write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ArtifactError, match="does not match"):
        load_model(run_dir)


def test_missing_card_refused(unsaved_keras_model, tmp_path):
    unsaved_keras_model.save(tmp_path / MODEL_FILE)
    with pytest.raises(ArtifactError, match="no model card"):
        load_model(tmp_path / MODEL_FILE)


def test_h5_refused(unsaved_keras_model, tmp_path):
    unsaved_keras_model.save(tmp_path / "model.h5")  # legacy HDF5, through Keras itself
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
    with pytest.raises(ArtifactError, match="holds a Lambda layer") as refused:
        load_model(tmp_path)
    assert refused.value.problem is ArtifactProblem.LAMBDA_LAYER


def test_atomic_save_keeps_the_previous_file(unsaved_keras_model, saved, monkeypatch):
    run_dir, card = saved
    before = (run_dir / MODEL_FILE).read_bytes()

    def crash(model, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a zip")
        raise KeyboardInterrupt  # killed mid-save

    monkeypatch.setattr(type(unsaved_keras_model), "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_keras_atomic(unsaved_keras_model, run_dir / MODEL_FILE)
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


def _rewrite_card(run_dir, **changes):
    """Edit the card beside a saved model; ``None`` removes a key. The sha256 stays the file's."""
    card = json.loads((run_dir / CARD_FILE).read_text())
    card.update(changes)
    card = {k: v for k, v in card.items() if v is not None}
    (run_dir / CARD_FILE).write_text(json.dumps(card))


def test_load_predictor_takes_everything_from_the_card(unsaved_keras_model, tmp_path, clips):
    """F, S, sampling, threshold and the fake index all come from the card; here "fake" is output 0."""
    card = save_model(unsaved_keras_model, tmp_path, {**CARD, "sampling": "keyframe", "threshold": 0.3,
                                             "class_names": ["fake", "real"]})
    predictor = load_predictor(tmp_path, batch_size=2)
    assert (predictor.card.frames, predictor.card.size, predictor.sampling, predictor.threshold) == (F, S, "keyframe", 0.3)
    assert predictor.card.fake_index == 0 and predictor.step.fake_index == 0
    assert predictor.card.crop == "frame"  # cards written before crops existed mean whole frames
    assert predictor.card.sha256 == card["sha256"] and predictor.card["name"] == "tiny"  # typed, and the card as written
    assert predictor.batch_size == 2 and predictor.step.shape == (2, F, S, S, 3)
    probabilities = np.asarray(unsaved_keras_model(clips[:2], training=False))  # (2, 2)
    np.testing.assert_allclose(predictor.predict(clips[:2]), probabilities[:, 0], rtol=1e-4, atol=1e-5)

    told = load_predictor(tmp_path / MODEL_FILE, batch_size=1, sampling="uniform", threshold=0.7)
    assert (told.sampling, told.threshold) == ("uniform", 0.7)  # a consumer's own choice wins ...
    assert (told.card.sampling, told.card.threshold) == ("keyframe", 0.3)  # ... and the card still says its own
    with pytest.raises(ValueError, match="unknown sampling 'random'"):
        load_predictor(tmp_path, batch_size=1, sampling="random")


def test_load_predictor_refuses_a_tampered_model(saved):
    run_dir, _ = saved
    with open(run_dir / MODEL_FILE, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match="sha256 .* does not match") as refused:
        load_predictor(run_dir, batch_size=1)
    assert refused.value.problem is ArtifactProblem.SHA256_MISMATCH


def test_a_card_without_a_fake_class_is_refused(unsaved_keras_model, saved, tmp_path):
    run_dir, _ = saved
    _rewrite_card(run_dir, class_names=["real", "deepfake"])
    for read in (load_card, verify_model, load_model, lambda path: load_predictor(path, batch_size=1)):
        with pytest.raises(ArtifactError, match=r"model.json: class_names \['real', 'deepfake'\] have no 'fake' class") \
                as refused:
            read(run_dir / MODEL_FILE)
        assert refused.value.problem is ArtifactProblem.NO_FAKE_CLASS
    with pytest.raises(ArtifactError, match="no 'fake' class"):  # nor is such a card ever written
        save_model(unsaved_keras_model, tmp_path / "new", {**CARD, "class_names": ["a", "b"]})
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("changes, problem, message", [
    ({"fake_index": 0}, ArtifactProblem.BAD_CARD, "fake_index 0 is not the position of 'fake'"),
    ({"crop": "mouth"}, ArtifactProblem.UNSUPPORTED_CROP, "crop 'mouth' is not one this dfscan makes"),
    ({"crop": "face"}, ArtifactProblem.UNSUPPORTED_CROP, "a face-crop card needs a 'face' object naming a detector"),
    ({"crop": "face", "face": {"detector": "dlib"}}, ArtifactProblem.UNSUPPORTED_CROP, "naming a detector this"),
    ({"crop": "face", "face": {"detector": "mtcnn", "margin": "wide"}}, ArtifactProblem.BAD_CARD,
     "face margin must be a number"),
    ({"crop": "face", "face": {"detector": "mtcnn", "margin": 5}}, ArtifactProblem.BAD_CARD,
     "face margin must be between 1.0 and 3.0"),
    ({"sampling": "random"}, ArtifactProblem.BAD_CARD, "unknown sampling 'random'"),
    ({"frames": "four"}, ArtifactProblem.BAD_CARD, "invalid literal"),
    ({"threshold": None}, ArtifactProblem.BAD_CARD, "model.json lacks threshold"),
    ({"threshold": 1.5}, ArtifactProblem.BAD_CARD, "threshold 1.5 must lie in"),
    ({"inconclusive_band": 0.5}, ArtifactProblem.BAD_CARD, "inconclusive_band 0.5 in"),
    ({"inconclusive_band": -0.1}, ArtifactProblem.BAD_CARD, "inconclusive_band -0.1 in"),
    ({"class_names": 5}, ArtifactProblem.BAD_CARD, "class_names must be a list of strings, not 5"),
    ({"class_names": "fake"}, ArtifactProblem.BAD_CARD, "class_names must be a list of strings, not \"fake\""),
    ({"frames": float("inf")}, ArtifactProblem.BAD_CARD, "cannot convert float infinity to integer"),
    ({"size": 0}, ArtifactProblem.BAD_CARD, "frames 4 and size 0 must be positive"),
])
def test_cards_that_cannot_be_honoured_are_refused(saved, changes, problem, message):
    run_dir, _ = saved
    _rewrite_card(run_dir, **changes)
    with pytest.raises(ArtifactError, match=message) as refused:
        load_card(run_dir / MODEL_FILE)
    assert refused.value.problem is problem


def test_a_card_that_agrees_with_itself_is_read(saved):
    run_dir, card = saved
    _rewrite_card(run_dir, fake_index=1, crop="frame")  # what training writes, and what crops default to
    read = load_card(run_dir / MODEL_FILE)
    assert (read.fake_index, read.crop, read.class_names) == (1, "frame", ("real", "fake"))
    assert dict(read) == {**card, "fake_index": 1, "crop": "frame"}
    assert read.inconclusive_band == 0.1  # a card that names no band gets the default
    assert read.clip_settings() == {"frames": card["frames"], "size": card["size"], "crop": "frame"}
    face = {"detector": "mtcnn", "detector_version": "1.0.0", "margin": 1.5, "detect_frames": 6, "detect_size": 320,
            "work_size": 512}
    _rewrite_card(run_dir, crop="face", face=face)  # a face model is read with its own face settings
    assert load_card(run_dir / MODEL_FILE).clip_settings() == {
        "frames": card["frames"], "size": card["size"], "crop": "face", "face_margin": 1.5, "face_detect_frames": 6,
        "face_detect_size": 320, "face_work_size": 512}
    _rewrite_card(run_dir, inconclusive_band=0.0)
    assert load_card(run_dir / MODEL_FILE).inconclusive_band == 0.0


@pytest.mark.parametrize("text, message", [
    (b"[1, 2]", "model.json is not a JSON object"),
    (b'{"name": "caf\xe9"}', "model.json is not UTF-8 (invalid continuation byte at byte 13)"),
    (b"[" * 10_000 + b"]" * 10_000, "model.json is nested too deeply to be a card"),
    (b"{}" + b" " * (1 << 20), "model.json is larger than 1048576 bytes; not a model card"),
], ids=["a list", "not UTF-8", "10000 deep", "over 1 MiB"])
def test_cards_of_the_wrong_shape_are_refused_in_one_line(saved, text, message):
    """Whatever the card holds, reading it is a BAD_CARD refusal, never a traceback; and a card is
    never read past a size no card reaches."""
    run_dir, _ = saved
    (run_dir / CARD_FILE).write_bytes(text)
    for read in (load_card, verify_model):
        with pytest.raises(ArtifactError) as refused:
            read(run_dir / MODEL_FILE)
        assert refused.value.problem is ArtifactProblem.BAD_CARD and refused.value.message == message
