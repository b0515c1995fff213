"""The web app's logic without a browser: the launch command, model listing, upload checks, and
checking a clip with stand-in predictors (exports included)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from kernels.sampling import plan_indices
from scanner.webapp import streamlit_command
from scanner.webapp.check import run_check, save_upload, validate_upload
from scanner.webapp.models import discover
from scanner.webapp.settings import DEFAULT_MAX_UPLOAD_MB, AppSettings, parse_args


def test_command_runs_headless_on_localhost_without_telemetry(tmp_path):
    command = streamlit_command([tmp_path / "m1", tmp_path / "m2.keras"], tmp_path / "out", 8999)
    assert command[1:4] == ["-m", "streamlit", "run"]
    for option in ("--server.port=8999", "--server.address=127.0.0.1", "--server.headless=true",
                   "--browser.gatherUsageStats=false", f"--server.maxUploadSize={DEFAULT_MAX_UPLOAD_MB}"):
        assert option in command
    script_args = command[command.index("--") + 1:]
    assert parse_args(script_args) == AppSettings(models=(str(tmp_path / "m1"), str(tmp_path / "m2.keras")),
                                                  verdicts=str(tmp_path / "out"), max_upload_mb=2048)
    assert parse_args([]) == AppSettings(models=(), verdicts=None, max_upload_mb=2048)
    with pytest.raises(ValueError, match="at least 1 MB"):
        streamlit_command([], None, 8999, max_upload_mb=0)


def test_upload_refusals_name_the_reason():
    limit = 2048 * 1024 * 1024
    assert validate_upload("clip.MP4", 10, limit) is None
    assert validate_upload("clip.webm", limit, limit) is None
    assert validate_upload("big.mkv", limit + 1, limit) == (
        "big.mkv is 2.0 GB, over the upload limit of 2.0 GB (start the app with a larger --max-upload-mb to raise it).")
    assert validate_upload("notes.txt", 10, limit) == (
        "notes.txt: .txt files are not accepted; upload one of mp4, mov, mkv, webm, avi.")
    assert validate_upload("empty.avi", 0, limit) == "empty.avi: the file is empty."


def test_save_upload_keeps_the_name_inside_the_folder(tmp_path):
    path = save_upload(io.BytesIO(b"x" * 3_000_000), "../../etc/evil name.mp4", tmp_path)
    assert path == tmp_path / "evil_name.mp4"
    assert path.stat().st_size == 3_000_000


def _card(name: str, frames: int = 4, size: int = 32, sampling: str = "uniform") -> dict:
    return {"name": name, "arch": "cnn-lstm", "frames": frames, "size": size, "sampling": sampling,
            "threshold": 0.5, "class_names": ["real", "fake"], "sha256": f"{name:0<64}"}


def _fake_run(root: Path, name: str, **card) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"PK")  # listing reads only cards
    (run / "model.json").write_text(json.dumps(_card(name, **card)))
    return run / "model.keras"


def test_models_are_listed_from_their_cards_and_refusals_explained(tmp_path):
    first = _fake_run(tmp_path / "runs", "alpha")
    _fake_run(tmp_path / "runs" / "nested", "beta", frames=8, sampling="keyframe")
    (tmp_path / "runs" / "nocard").mkdir()
    (tmp_path / "runs" / "nocard" / "model.keras").write_bytes(b"PK")
    (tmp_path / "old.h5").write_bytes(b"HDF")
    found = discover([str(tmp_path / "runs"), str(first), str(tmp_path / "missing"), str(tmp_path / "old.h5"), ""])
    assert [m.name for m in found.models] == ["alpha", "beta"]  # alpha once, though named twice
    assert found.models[1].label() == "beta · cnn-lstm · 8×32px · keyframe · sha beta00000000"
    assert len(found.problems) == 3
    assert "no model card model.json beside model.keras" in found.problems[0]
    assert found.problems[1] == f"{tmp_path / 'missing'}: no such file or folder"
    assert found.problems[2] == f"{tmp_path / 'old.h5'}: not a .keras model file"
    empty = discover([str(tmp_path / "runs" / "nocard" / "x")])
    assert empty.models == [] and len(empty.problems) == 1


class _StubLoaded:
    def __init__(self, name: str, card: dict):
        self.name, self.sha256, self.threshold, self.inconclusive_band = name, "f" * 64, 0.5, 0.1
        self.frames, self.size = card["frames"], card["size"]


class _StubPredictor:
    """p_fake = mean grey level / 255 of the frames it is given, so results depend on the frames."""

    def __init__(self, calls: list):
        self.calls = calls

    def predict(self, frames: np.ndarray) -> np.ndarray:  # (1, F, S, S, 3) uint8 -> (1,)
        self.calls.append(frames.shape)
        return np.array([frames.mean() / 255.0], dtype=np.float32)


def test_check_decodes_once_per_clip_shape_and_exports_sha_and_indices(tmp_path, clip_file):
    root = tmp_path / "runs"
    for name, frames, sampling in (("a", 4, "uniform"), ("b", 4, "uniform"), ("c", 6, "keyframe")):
        _fake_run(root, name, frames=frames, sampling=sampling)
    (root / "broken").mkdir()
    (root / "broken" / "model.keras").write_bytes(b"PK")
    (root / "broken" / "model.json").write_text(json.dumps(_card("broken", frames=4)))
    models = discover([str(root)]).models
    calls, steps = [], []

    def load(path: str):
        card = json.loads(Path(path).with_suffix(".json").read_text())
        if card["name"] == "broken":
            raise ValueError("model.keras: not a Keras 3 archive")
        return _StubLoaded(card["name"], card), _StubPredictor(calls)

    result = run_check(clip_file, models, load=load, progress=lambda f, t: steps.append((f, t)),
                       file_name="upload.mp4")
    assert [(v.frames, v.sampling, v.models) for v in result.views] == [
        (4, "uniform", ["a", "b", "broken"]), (6, "keyframe", ["c"])]
    uniform = plan_indices("uniform", 30, (0, 12, 24), 4).tolist()
    keyframe = plan_indices("keyframe", 30, (0, 12, 24), 6).tolist()
    assert [r.frame_indices for r in result.results] == [uniform, uniform, uniform, keyframe]
    assert [r.status for r in result.results] == ["ok", "ok", "error", "ok"]
    assert result.results[2].error_class == "MODEL_REFUSED"
    assert calls == [(1, 4, 32, 32, 3), (1, 4, 32, 32, 3), (1, 6, 32, 32, 3)]
    expected = float(result.views[0].clip.frames.mean() / 255.0)
    assert result.results[0].p_fake == pytest.approx(expected)
    assert result.results[0].verdict == ("fake" if expected >= 0.5 else "real")
    assert [f for f, _ in steps] == sorted(f for f, _ in steps) and steps[-1] == (1.0, "Done.")
    assert result.probe["path"] == "upload.mp4" and result.probe["frame_count"] == 30

    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["model_name"] for r in rows] == ["a", "b", "broken", "c"]
    assert rows[0]["model_sha256"] == "f" * 64 and rows[0]["frame_indices"] == " ".join(map(str, uniform))
    assert rows[3]["frame_indices"] == " ".join(map(str, keyframe)) and rows[0]["codec"] == "h264"
    exported = json.loads(result.to_json())
    assert exported["file"] == "upload.mp4" and exported["probe"]["keyframes"] == [0, 12, 24]
    assert exported["results"][3]["frame_indices"] == keyframe
    assert exported["results"][2]["error_message"] == "model.keras: not a Keras 3 archive"


def test_corrupt_upload_is_one_file_error_without_the_temporary_path(tmp_path):
    _fake_run(tmp_path / "runs", "a")
    bad = tmp_path / "tmpcopy" / "upload.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00garbage" * 300)
    result = run_check(bad, discover([str(tmp_path / "runs")]).models, load=lambda p: pytest.fail("loaded"),
                       progress=lambda f, t: None, file_name="holiday.mp4")
    error_class, message = result.file_error
    assert error_class in ("NOT_VIDEO", "CONTAINER_INVALID")
    assert str(bad) not in message
    assert result.results[0].status == "error" and result.results[0].error_class == error_class
