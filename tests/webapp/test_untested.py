"""What the app says when a verdict would outrun its model: untested in grey with its reason, p_fake
never rounded to certainty, alarms above everything, the face square drawn where the model looked, and
exports that say in words what an error class means."""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from dfscan.kernels.clips import Clip
from dfscan.kernels.scope import UNTESTED_SYNTHETIC
from dfscan.kernels.trust import format_p_fake
from dfscan.scanner.verdicts import rows_to_table
from dfscan.scanner.webapp.check import CheckResult, ClipView, ModelResult, check_alarms, export_csv, run_check
from dfscan.scanner.webapp.models import discover
from tests.kernels.clip_parts import probe, track
from tests.webapp.data import verdict_row
from tests.webapp.markdown_safety import as_read
from tests.webapp.stubs import fake_run, stub_load

pytest.importorskip("streamlit", reason="the web app needs streamlit: pip install -e '.[app]'")
from streamlit.testing.v1 import AppTest  # noqa: E402

MEASURED = {"test": {"roc_auc": 0.97, "accuracy": 0.93, "n_videos": 120, "confusion": [[56, 4], [4, 56]]}}


def _check_page(models: str):
    from dfscan.scanner.webapp import check_page
    from dfscan.scanner.webapp.settings import AppSettings

    check_page.render(AppSettings(models=(models,)))


def _browse_page(verdicts: str):
    from dfscan.scanner.webapp import browse_page
    from dfscan.scanner.webapp.settings import AppSettings

    browse_page.render(AppSettings(models=(), verdicts=verdicts))


@pytest.mark.parametrize("p_fake, shown", [(0.9953, "> 0.99"), (0.99, "0.99"), (0.004, "< 0.01"), (0.5049, "0.50"),
                                           (None, "n/a")])
def test_p_fake_is_never_rounded_to_certainty(p_fake, shown):
    assert format_p_fake(p_fake) == shown


def test_untested_is_grey_with_its_reason_and_certainty_is_never_shown(tmp_path, clip_file, monkeypatch):
    from dfscan.scanner.webapp import check_page

    fake_run(tmp_path / "runs", "a-real", metrics=MEASURED, dataset={"root": "/data/celeb-df", "synthetic": False})
    fake_run(tmp_path / "runs", "b-synth", metrics=MEASURED, dataset={"root": "/data/synth", "synthetic": True})
    monkeypatch.setattr(check_page, "_load", lambda path: stub_load(path, p_fake=0.9953))
    app = AppTest.from_function(_check_page, args=(str(tmp_path / "runs"),), default_timeout=120).run()
    app.file_uploader[0].set_value(("clip.mp4", clip_file.read_bytes(), "video/mp4")).run()
    assert not app.exception
    # The model measured on real videos: FAKE, its p_fake shown as "> 0.99", not "1.00".
    assert [m.value for m in app.metric] == ["> 0.99"]
    badges = [m.value for m in app.markdown if m.value.startswith("conclusion")]
    assert badges == ["conclusion :red-badge[FAKE]", "conclusion :gray-badge[UNTESTED]"]
    # The synthetic-only model: grey, and the one sentence of why; its score is not evidence.
    assert [as_read(i.value) for i in app.info] == [
        f"Untested: {UNTESTED_SYNTHETIC}. Its score (p_fake > 0.99) is not evidence either way."]


def test_browse_puts_alarms_first_and_counts_untested(tmp_path):
    out, archive = tmp_path / "verdicts", tmp_path / "archive"
    out.mkdir()
    rows = [dict(verdict_row(archive, f"clip{i}.mp4", "ok", 0.98 + i / 1000), conclusion="untested",
                 untested_reason=UNTESTED_SYNTHETIC) for i in range(12)]
    pq.write_table(rows_to_table(rows), out / "part-run-1-000000.parquet")
    app = AppTest.from_function(_browse_page, args=(str(out),), default_timeout=60).run()
    assert not app.exception and not app.error
    warnings = [as_read(w.value) for w in app.warning]
    assert warnings[0].startswith("Alarm for tiny-a: the model called 12 of 12 files fake (p_fake 0.980-0.991)")
    assert warnings[1].startswith("Alarm for tiny-a: 12 of 12 conclusions are untested, most because this model")
    assert [(m.label, m.value) for m in app.metric if m.label in ("Fake", "Untested")] == [("Fake", "0"),
                                                                                          ("Untested", "12")]
    # The alarms come before everything the folder holds: the first elements after the title and the folder.
    assert [element.type for element in app.main][1:5] == ["title", "text_input", "warning", "warning"]
    table = app.dataframe[0].value
    assert list(table.columns[:3]) == ["conclusion", "p_fake", "path"]  # read first on a phone
    assert table["p_fake"].tolist()[:2] == ["0.98", "0.98"] and table["p_fake"].tolist()[-1] == "0.99"


def _result(p_fake: float, path: str = "m") -> ModelResult:
    return ModelResult(model_name="m", model_sha256="0" * 64, model_path=path, status="ok", p_fake=p_fake,
                       verdict="fake" if p_fake >= 0.5 else "real", conclusion="fake" if p_fake >= 0.5 else "real")


def test_clips_checked_together_raise_the_models_alarms(tmp_path):
    fake_run(tmp_path / "runs", "m", metrics=MEASURED, dataset={"root": "/data/celeb-df", "synthetic": False})
    (entry,) = discover([str(tmp_path / "runs")]).models
    same = [CheckResult(file=f"{i}.mp4", size_bytes=1, checked_at="", probe=None, views=[],
                        results=[_result(0.99, entry.path)]) for i in range(12)]
    (alarm,) = check_alarms(same, [entry])
    assert alarm["kind"] == "ONE_CLASS" and alarm["model_name"] == "m"
    assert alarm["message"].startswith("the model called 12 of 12 files fake")
    spread = [CheckResult(file=f"{i}.mp4", size_bytes=1, checked_at="", probe=None, views=[],
                          results=[_result(p, entry.path)]) for i, p in enumerate(np.linspace(0.05, 0.95, 12))]
    assert check_alarms(spread, [entry]) == []


def test_exports_say_errors_in_words_and_the_face_box_unit(tmp_path, clip_file):
    fake_run(tmp_path / "runs", "m", metrics=MEASURED)
    models = discover([str(tmp_path / "runs")]).models
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip_file.read_bytes()[:1500])
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"these are meeting notes, not a video " * 50)
    checks = [run_check(path, models, load=lambda p: stub_load(p, p_fake=0.3), progress=lambda f, t: None)
              for path in (cut, not_video, clip_file)]
    rows = list(csv.DictReader(io.StringIO(export_csv(checks))))
    header = list(rows[0])
    assert header[header.index("error_class") + 1] == "error_words"
    assert header[header.index("face_box") + 1] == "face_box_unit"
    # Both are CONTAINER_INVALID; the words tell a cut-off video from a file that never was one.
    assert [(r["error_class"], r["error_words"]) for r in rows[:2]] == [
        ("CONTAINER_INVALID", "the file is incomplete (cut off): it starts as a video but the rest is missing or "
                              "damaged"), ("CONTAINER_INVALID", "this is not a video file")]
    assert (rows[2]["status"], rows[2]["error_words"], rows[2]["face_box_unit"]) == ("ok", "", "")


def test_look_closer_draws_the_square_the_face_model_cut():
    from dfscan.scanner.webapp.result_view import draw_box, face_box_at

    faces = track((640, 360), (100, 50, 120, 150), frames=4)
    clip = Clip("/a/x.mp4", probe=probe(640, 360), indices=np.array([0, 10, 19, 29]), faces=faces,
                frames=np.zeros((4, 32, 32, 3), np.uint8))
    check = CheckResult(file="x.mp4", size_bytes=1, checked_at="", probe=None, results=[],
                        views=[ClipView(4, 32, "uniform", clip, ["m"], crop="face")])
    box, detected = face_box_at(check, 19)
    assert box == (100.0, 50.0, 120.0, 150.0) and detected
    assert face_box_at(check, 5) is None  # a frame no model saw
    drawn = draw_box(np.zeros((360, 640, 3), np.uint8), box, detected)
    assert tuple(drawn[50, 150]) == (0, 220, 0) and tuple(drawn[199, 150]) == (0, 220, 0)  # top and bottom edges
    assert tuple(drawn[120, 160]) == (0, 0, 0)  # inside stays as it was


def test_show_frames_of_a_face_row_shows_the_squares_and_the_crops(tmp_path):
    from dfscan.kernels.clips import ClipReader, ClipSpec
    from tests.face_media import skip_without_mtcnn_weights, write_face_video

    skip_without_mtcnn_weights()
    archive, out = tmp_path / "archive", tmp_path / "verdicts"
    archive.mkdir()
    video = write_face_video(archive / "anchor", 30, "vp9")  # the portrait moving across a 640x360 frame
    (clip,) = ClipReader(ClipSpec(frames=4, size=32, crop="face"), gpu=False).read([str(video)])
    assert clip.ok and clip.faces.found
    out.mkdir()
    row = dict(verdict_row(archive, video.name, "ok", 0.3), frame_indices=[int(i) for i in clip.indices],
               crop="face", face_found=True, face_frames=4, conclusion="real", width=640, height=360)
    pq.write_table(rows_to_table([row]), out / "part-run-1-000000.parquet")
    app = AppTest.from_function(_browse_page, args=(str(out),), default_timeout=180).run()
    app.button(key="show_frames").click().run()
    assert not app.exception and not app.error
    assert [as_read(s.value) for s in app.success] == [f"{archive / video.name}: face crops of the same 4 frames "
                                                       f"the scan used."]
    read = [as_read(c.value) for c in app.caption]
    assert any(text.startswith("Boxes: green, the face the detector found") for text in read)
    assert "What the model saw:" in read
