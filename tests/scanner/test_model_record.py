"""The model is decided once, in the driver: one frozen record (file, sha256, card, sampling, threshold,
band, crop) that every worker receives and only checks; a file replaced mid-run is refused."""

from __future__ import annotations

import pickle
import shutil

import pytest

from dfscan.kernels.artifact import decide_model

from dfscan.kernels.errors import ArtifactError, ArtifactProblem
from dfscan.scanner.workers import ScanWorker
from tests.models import save_tiny_model


def test_the_record_takes_the_cards_choices_unless_overridden(tmp_path):
    model = save_tiny_model(tmp_path / "m", "m", frames=4, size=32, sampling="keyframe", threshold=0.3)
    record = decide_model(model)
    assert (record.sampling, record.threshold, record.band, record.crop) == ("keyframe", 0.3, 0.1, "frame")
    assert record.path == str(model.resolve()) and record.sha256 == record.card.sha256 and record.name == "m"
    other = decide_model(tmp_path / "m", sampling="uniform", threshold=0.7)
    assert (other.sampling, other.threshold, other.sha256) == ("uniform", 0.7, record.sha256)
    assert pickle.loads(pickle.dumps(record)) == record  # what Ray sends every worker
    with pytest.raises(ValueError, match="unknown sampling 'random'"):
        decide_model(model, sampling="random")


def test_a_worker_uses_the_record_and_refuses_a_replaced_file(tmp_path):
    model = save_tiny_model(tmp_path / "m", "m", frames=4, size=32, threshold=0.3)
    record = decide_model(model, sampling="keyframe", threshold=0.8)
    worker = ScanWorker(record, str(tmp_path), batch_size=2)
    assert (worker.spec.sampling, worker.predictor.threshold, worker.info()["model_sha256"]) == (
        "keyframe", 0.8, record.sha256)
    replacement = save_tiny_model(tmp_path / "other", "m", frames=4, size=32, threshold=0.3)
    shutil.copy(replacement, model)  # a new model and its own card, swapped in after the run decided
    shutil.copy(replacement.with_suffix(".json"), model.with_suffix(".json"))
    with pytest.raises(ArtifactError, match="is not the .* this run decided on") as refused:
        ScanWorker(record, str(tmp_path), batch_size=2)
    assert refused.value.problem is ArtifactProblem.SHA256_MISMATCH
