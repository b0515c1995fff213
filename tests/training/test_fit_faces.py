"""Face crops through training, the model card, evaluation and the scanner's worker: `dfscan train
--crop face` records its face settings in the card, every consumer reads clips the way the card says,
and each video meets the detector once however many epochs and offsets read it."""

from __future__ import annotations

import numpy as np

from dfscan.kernels.artifact import decide_model

from dfscan.kernels.card import load_card
from dfscan.kernels.faces import MtcnnDetector
from dfscan.scanner import verdicts
from dfscan.scanner.workers import ScanWorker
from tests.face_media import write_face_video
from dfscan.training.evaluate import EvalConfig, evaluate
from dfscan.training.fit import TrainConfig, train


def test_a_face_model_is_trained_scored_and_scanned_on_face_crops(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for label in ("real", "fake"):
        for i in range(2):
            (data / label).mkdir(parents=True, exist_ok=True)
            write_face_video(data / label / f"{label}{i}", 24, "vp9", top=60 + 40 * i)
    detected = []
    original = MtcnnDetector.detect

    def counting(self, images):
        detected.append(len(images))
        return original(self, images)

    monkeypatch.setattr(MtcnnDetector, "detect", counting)
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), frames=4, size=32, width=0.125,
                               batch_size=2, epochs=2, steps_per_epoch=2, test_fraction=0.5, val_fraction=0,
                               backbone_weights="none", crop="face", face_margin=1.5, face_detect_size=400,
                               verbose=0))
    # 4 videos x 4 frames detected on, once each: two epochs of augmented, shifted reads hit the cache.
    assert sum(detected) == 16
    card = load_card(tmp_path / "run" / "model.keras")
    assert card.crop == "face" and card["face"] == {"detector": "mtcnn", "detector_version": "1.0.0", "margin": 1.5,
                                                   "detect_frames": 4, "detect_size": 400, "work_size": 1920}
    assert card.clip_settings() == {"frames": 4, "size": 32, "crop": "face", "face_margin": 1.5,
                                    "face_detect_frames": 4, "face_detect_size": 400, "face_work_size": 1920}
    assert result.card["input"]["resize"].startswith("square of margin x the tracked face box")

    detected.clear()
    metrics = evaluate(EvalConfig(data=str(data), model=str(tmp_path / "run"), split="all"))
    assert metrics["n_videos"] == 4 and sum(detected) == 16  # evaluation crops faces too, from the card alone
    assert metrics["faces_found"] == {"videos": 4, "of": 4} and metrics["untested_videos"] == 0
    scope = card["scope"]
    assert scope["face_found"] == {"train": 1.0, "test": 1.0} and scope["data"] == "real"
    assert scope["long_side"] == [640.0, 640.0] and 30 <= scope["face_px"][0] <= scope["face_px"][1] <= 100

    worker = ScanWorker(decide_model(tmp_path / "run" / "model.keras"), str(data), batch_size=2)
    assert (worker.spec.crop, worker.spec.face_margin) == ("face", 1.5)
    rows = worker.scan(["real/real0.webm", "fake/fake1.webm"])["rows"]
    for row in rows:
        assert (row["status"], row["crop"], row["face_found"], row["face_frames"]) == ("ok", "face", True, 4), row
        x, y, w, h = row["face_box"]
        assert 0 < x < 1 and 0 < y < 1 and 0.1 < h < 0.25  # the portrait's face: about 55 of 360 pixels high
    table = verdicts.rows_to_table(rows)
    assert table["face_box"].type.value_type == verdicts.VERDICT_SCHEMA.field("face_box").type.value_type
    assert np.allclose(table["face_box"].to_pylist()[0], rows[0]["face_box"], atol=1e-6)
