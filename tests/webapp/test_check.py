"""The web app's logic without a browser: the launch command, model listing, upload checks, and
checking a clip with stand-in predictors (exports included)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import numpy as np
import pytest

from dfscan.kernels.provenance import dfscan_version
from dfscan.kernels.sampling import plan_indices
from dfscan.kernels.scope import UNTESTED_SYNTHETIC
from dfscan.scanner.webapp import streamlit_command
from dfscan.scanner.webapp.check import (CheckResult, ModelResult, export_csv, export_json, run_check, save_upload,
                                  validate_upload)
from dfscan.scanner.webapp.models import discover
from dfscan.scanner.webapp.settings import DEFAULT_MAX_UPLOAD_MB, AppSettings, parse_args
from tests.webapp.stubs import fake_run, stub_load


def test_command_runs_headless_on_localhost_without_telemetry(tmp_path):
    command = streamlit_command([tmp_path / "m1", tmp_path / "m2.keras"], tmp_path / "out", 8999)
    assert command[1:4] == ["-m", "streamlit", "run"]
    for option in ("--server.port=8999", "--server.address=127.0.0.1", "--server.headless=true",
                   "--browser.gatherUsageStats=false", f"--server.maxUploadSize={DEFAULT_MAX_UPLOAD_MB}",
                   "--client.disableDataExport=true"):  # Streamlit's table CSV keeps formula-like cells
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


def test_models_are_listed_from_their_cards_and_refusals_explained(tmp_path):
    first = fake_run(tmp_path / "runs", "alpha")
    fake_run(tmp_path / "runs" / "nested", "beta", frames=8, sampling="keyframe")
    (tmp_path / "runs" / "nocard").mkdir()
    (tmp_path / "runs" / "nocard" / "model.keras").write_bytes(b"PK")
    (tmp_path / "old.h5").write_bytes(b"HDF")
    found = discover([str(tmp_path / "runs"), str(first), str(tmp_path / "missing"), str(tmp_path / "old.h5"), ""])
    assert [m.name for m in found.models] == ["alpha", "beta"]  # alpha once, though named twice
    # No metrics on the card: the chooser says the model is untrusted.
    assert found.models[1].label() == "beta · cnn-lstm · 8×32px · keyframe · sha beta00000000 · UNTRUSTED"
    assert len(found.problems) == 3
    assert "no model card model.json beside model.keras" in found.problems[0]
    assert found.problems[1] == f"{tmp_path / 'missing'}: no such file or folder"
    assert found.problems[2] == f"{tmp_path / 'old.h5'}: not a .keras model file"
    empty = discover([str(tmp_path / "runs" / "nocard" / "x")])
    assert empty.models == [] and len(empty.problems) == 1


def test_check_decodes_once_per_clip_shape_and_exports_sha_and_indices(tmp_path, clip_file):
    root = tmp_path / "runs"
    for name, frames, sampling in (("a", 4, "uniform"), ("b", 4, "uniform"), ("c", 6, "keyframe")):
        fake_run(root, name, frames=frames, sampling=sampling)
    fake_run(root, "broken", frames=4)
    models = discover([str(root)]).models
    calls, steps = [], []
    result = run_check(clip_file, models, load=lambda path: stub_load(path, calls),
                       progress=lambda f, t: steps.append((f, t)), file_name="upload.mp4")
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

    rows = list(csv.DictReader(io.StringIO(export_csv([result]))))
    assert [r["model_name"] for r in rows] == ["a", "b", "broken", "c"]
    assert rows[0]["model_sha256"] == "a" + "0" * 63 and rows[0]["frame_indices"] == " ".join(map(str, uniform))
    assert rows[3]["frame_indices"] == " ".join(map(str, keyframe)) and rows[0]["codec"] == "h264"
    exported = json.loads(export_json([result]))["clips"][0]
    assert exported["file"] == "upload.mp4" and exported["probe"]["keyframes"] == [0, 12, 24]
    assert exported["results"][3]["frame_indices"] == keyframe
    assert exported["results"][2]["error_message"] == "model.keras: not a Keras 3 archive"
    # Provenance on every row: the clip's own sha256, dfscan's version, the model's card metrics.
    clip_sha = hashlib.sha256(clip_file.read_bytes()).hexdigest()
    assert {(r["clip_sha256"], r["dfscan_version"]) for r in rows} == {(clip_sha, dfscan_version())}
    assert exported["clip_sha256"] == clip_sha and exported["dfscan_version"] == dfscan_version()
    assert rows[0]["card_metrics"] == "no measured quality on its card" and rows[0]["card_untrusted"] == "True"
    assert exported["results"][0]["card_warnings"] == ["no val metrics recorded"]


def test_corrupt_upload_is_one_file_error_without_the_temporary_path(tmp_path):
    fake_run(tmp_path / "runs", "a")
    bad = tmp_path / "tmpcopy" / "upload.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00garbage" * 300)
    result = run_check(bad, discover([str(tmp_path / "runs")]).models, load=lambda p: pytest.fail("loaded"),
                       progress=lambda f, t: None, file_name="holiday.mp4")
    error_class, message = result.file_error
    assert error_class in ("NOT_VIDEO", "CONTAINER_INVALID")
    assert str(bad) not in message
    assert result.results[0].status == "error" and result.results[0].error_class == error_class


def test_several_clips_export_together_with_every_rows_provenance(tmp_path, clip_file):
    metrics = {"test": {"roc_auc": 0.97, "accuracy": 0.93, "n_videos": 120, "confusion": [[56, 4], [4, 56]]}}
    fake_run(tmp_path / "runs", "good", metrics=metrics, dataset={"root": "/data/celeb-df", "synthetic": False})
    fake_run(tmp_path / "runs", "synth", metrics=metrics, dataset={"root": "/data/synth", "synthetic": True})
    models = discover([str(tmp_path / "runs")]).models
    other = tmp_path / "other.mp4"
    other.write_bytes(clip_file.read_bytes()[:1500])  # cut off: a file error for both models
    checks = [run_check(path, models, load=lambda p: stub_load(p, p_fake=0.8), progress=lambda f, t: None)
              for path in (clip_file, other)]
    rows = list(csv.DictReader(io.StringIO(export_csv(checks))))
    assert [(r["file"], r["model_name"], r["status"], r["conclusion"]) for r in rows] == [
        ("clip.mp4", "good", "ok", "fake"), ("clip.mp4", "synth", "ok", "untested"),
        ("other.mp4", "good", "error", ""), ("other.mp4", "synth", "error", "")]
    # A model trained on synthetic videos only has never been measured on an uploaded clip: untested, and
    # the export says why; the threshold's call stays in `verdict`.
    assert [(r["verdict"], r["untested_reason"]) for r in rows[:2]] == [("fake", ""), ("fake", UNTESTED_SYNTHETIC)]
    shas = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (clip_file, other)]
    assert [r["clip_sha256"] for r in rows] == [shas[0], shas[0], shas[1], shas[1]]
    assert {r["card_metrics"] for r in rows[::2]} == {"test AUC 0.97, accuracy 0.93 on 120 videos of 'celeb-df'"}
    assert rows[1]["card_metrics"] == "test AUC 0.97, accuracy 0.93 on 120 videos of 'synth' (synthetic)"
    assert (rows[1]["card_synthetic"], rows[1]["card_untrusted"], rows[1]["card_auc"]) == ("True", "False", "0.97")
    assert rows[1]["card_warnings"].startswith("trained and tested on synthetic videos only")
    assert (rows[0]["card_n_videos"], rows[0]["card_dataset"], rows[0]["card_accuracy"]) == ("120", "celeb-df", "0.93")
    exported = json.loads(export_json(checks))
    assert exported["dfscan_version"] == dfscan_version()
    assert [(c["file"], c["clip_sha256"], len(c["results"])) for c in exported["clips"]] == [
        ("clip.mp4", shas[0], 2), ("other.mp4", shas[1], 2)]
    assert exported["clips"][0]["results"][0]["frame_indices"] == [0, 10, 19, 29]


def test_a_face_model_sees_face_crops_and_the_page_gets_the_boxes(tmp_path):
    """A face-crop card is read with its own face settings (no flag), beside a whole-frame model of the
    same F and S: two decodes, the face view carries the boxed whole frames, the rows the face columns."""
    from tests.face_media import write_face_video

    video = write_face_video(tmp_path / "clip", 24, "vp9")
    root = tmp_path / "runs"
    face = {"detector": "mtcnn", "detector_version": "1.0.0", "margin": 1.5, "detect_frames": 4, "detect_size": 320,
            "work_size": 640}
    fake_run(root, "faces", frames=4, size=32, crop="face", face=face)
    fake_run(root, "frames", frames=4, size=32)
    models = discover([str(root)]).models
    result = run_check(video, models, load=stub_load, progress=lambda f, t: None, file_name="clip.webm")
    by_crop = {view.crop: view for view in result.views}
    assert sorted(by_crop) == ["face", "frame"] and by_crop["frame"].boxed is None
    face_view = by_crop["face"]
    assert face_view.clip.crop == "face" and face_view.clip.faces.margin == 1.5
    assert face_view.boxed.shape[0] == 4 and face_view.boxed.shape[3] == 3
    rows = {r.model_name: r for r in result.results}
    assert (rows["faces"].crop, rows["faces"].face_found, rows["faces"].face_frames) == ("face", True, 4)
    assert (rows["frames"].crop, rows["frames"].face_found) == ("frame", None)
    assert 0.1 < rows["faces"].face_box[3] < 0.25  # the face's height as a fraction of the frame
    assert not np.array_equal(face_view.clip.frames, by_crop["frame"].clip.frames)


def test_the_csv_export_neutralises_formula_names_and_the_json_keeps_them():
    """Night-safety item 2: an uploaded clip's name is the user's to choose."""
    names = ["=cmd|' -C calc'!A0.mp4", "+SUM(1,2).mp4", "@evil.mp4", "-x.mp4", "two\nlines.mp4"]
    checks = [CheckResult(file=name, size_bytes=1, checked_at="2026-12-07T00:00:00", probe=None, views=[],
                          results=[ModelResult(model_name="@model", model_sha256="a" * 64, model_path="m.keras",
                                               status="ok", p_fake=-0.0)]) for name in names]
    rows = list(csv.DictReader(io.StringIO(export_csv(checks), newline="")))
    assert [r["file"] for r in rows] == ["'=cmd|' -C calc'!A0.mp4", "'+SUM(1,2).mp4", "'@evil.mp4", "'-x.mp4",
                                         "two\nlines.mp4"]
    assert {r["model_name"] for r in rows} == {"'@model"} and {r["p_fake"] for r in rows} == {"-0.0"}
    assert [clip["file"] for clip in json.loads(export_json(checks))["clips"]] == names
