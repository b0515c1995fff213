"""Both pages run headless (Streamlit's AppTest, no browser) on hostile names and untrustworthy models:
every name is shown as text, each model's conclusion comes with its card's measured quality and a
warning when it cannot be relied on, errors read in plain words, and several clips get one section each."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from dfscan.kernels.trust import explain_p_fake
from dfscan.scanner.verdicts import rows_to_table
from tests.webapp.data import verdict_row
from tests.webapp.markdown_safety import as_read, markdown_bodies, unsafe
from tests.webapp.stubs import fake_run, stub_load

pytest.importorskip("streamlit", reason="the web app needs streamlit: pip install -e '.[app]'")
from streamlit.testing.v1 import AppTest  # noqa: E402

IMAGE_NAME = "![x](https:127.0.0.1:8811/p.png).mp4"
HTML_NAME = "<img src=x onerror=alert(1)>.mp4"
LINK_NAME = "[link](javascript:alert(1)).mp4"
NEAR_CHANCE = {"test": {"roc_auc": 0.52, "accuracy": 0.5, "n_videos": 40, "confusion": [[20, 0], [20, 0]]}}
GOOD = {"test": {"roc_auc": 0.97, "accuracy": 0.93, "n_videos": 120, "confusion": [[56, 4], [4, 56]]}}


def _check_page(models: str):
    from dfscan.scanner.webapp import check_page
    from dfscan.scanner.webapp.settings import AppSettings

    check_page.render(AppSettings(models=(models,)))


def _browse_page(models: str, verdicts: str):
    from dfscan.scanner.webapp import browse_page
    from dfscan.scanner.webapp.settings import AppSettings

    browse_page.render(AppSettings(models=(models,), verdicts=verdicts))


def _read(app_test) -> list[str]:
    bodies = markdown_bodies(app_test)
    assert {body: unsafe(body) for body in bodies if unsafe(body)} == {}
    return [as_read(body) for body in bodies]


@pytest.fixture
def models(tmp_path):
    root = tmp_path / "models"
    fake_run(root, "a-coin", name=f"coin {IMAGE_NAME}", metrics=NEAR_CHANCE,
             dataset={"root": f"/data/{LINK_NAME}", "synthetic": False})
    fake_run(root, "b-good", name="good", metrics=GOOD, dataset={"root": "/data/celeb-df", "synthetic": False})
    return root


def test_check_page_shows_names_as_text_and_each_models_trust(tmp_path, models, clip_file, monkeypatch):
    from dfscan.scanner.webapp import check_page

    monkeypatch.setattr(check_page, "_load", lambda path: stub_load(path, p_fake=0.47))
    data = clip_file.read_bytes()
    app = AppTest.from_function(_check_page, args=(str(models),), default_timeout=120).run()
    assert app.multiselect[0].options == [
        f"coin {IMAGE_NAME} · cnn-lstm · 4×32px · uniform · sha {f'coin {IMAGE_NAME}'[:12]} · UNTRUSTED",
        "good · cnn-lstm · 4×32px · uniform · sha good00000000"]
    app.file_uploader[0].set_value([(IMAGE_NAME, data, "video/mp4"), (HTML_NAME, b"this is not a video " * 200,
                                                                        "video/mp4"),
                                    (LINK_NAME, data[: len(data) // 2], "video/mp4")]).run()
    assert not app.exception
    read = _read(app)
    # One section per clip, each named as uploaded.
    assert [body for body in read if body in (IMAGE_NAME, HTML_NAME, LINK_NAME)] == [IMAGE_NAME]
    errors = [as_read(e.value) for e in app.error]
    # The failed files first, above every result (and the exports), then each in its place.
    assert errors[0] == (f"2 of 3 files could not be checked: {HTML_NAME} (this is not a video file); {LINK_NAME} "
                         f"(the file is incomplete (cut off): it starts as a video but the rest is missing or damaged).")
    assert errors[1:] == [f"{HTML_NAME} cannot be checked: this is not a video file.",
                      f"{LINK_NAME} cannot be checked: the file is incomplete (cut off): it starts as a video "
                      f"but the rest is missing or damaged."]
    details = [t.value for t in app.text]
    assert len(details) == 2 and all(d.startswith("CONTAINER_INVALID: ") for d in details)
    # Both models say 0.47 against 0.5 with the default band: inconclusive, in a neutral badge.
    assert [m.value for m in app.metric] == ["0.47", "0.47"]
    assert [m.value for m in app.markdown if m.value.startswith("conclusion")] == [
        "conclusion :gray-badge[INCONCLUSIVE]"] * 2
    assert read.count(explain_p_fake(0.5, 0.1)) == 2
    warnings = [as_read(w.value) for w in app.warning]
    assert warnings == ["Do not rely on this model: test AUC 0.52 is near chance (0.5): the model does not tell real "
                        "from fake; it calls every test video real."]
    assert f"Measured quality: test AUC 0.52, accuracy 0.50 on 40 videos of '{LINK_NAME}'" in read
    assert "Measured quality: test AUC 0.97, accuracy 0.93 on 120 videos of 'celeb-df'" in read


def test_look_closer_shows_a_sampled_frame_at_source_resolution(models, clip_file, monkeypatch):
    from dfscan.scanner.webapp import check_page

    monkeypatch.setattr(check_page, "_load", lambda path: stub_load(path, p_fake=0.9))
    app = AppTest.from_function(_check_page, args=(str(models),), default_timeout=120).run()
    app.file_uploader[0].set_value(("clip.mp4", clip_file.read_bytes(), "video/mp4")).run()
    closer = app.selectbox(key="closer-index-0")
    assert closer.options == ["0", "10", "19", "29"]  # the frames the models saw
    closer.set_value(19).run()
    app.button(key="closer-show-0").click().run()
    assert not app.exception and not app.error
    images = [e for e in app.main if e.type == "image"]
    assert re.search(r"frame 19 at 128×96 px", str(images[-1].proto))


def test_browse_page_shows_hostile_names_as_text_and_the_models_trust(tmp_path, models):
    out = tmp_path / f"out {HTML_NAME[:-4]}"
    out.mkdir()
    archive = tmp_path / "archive"
    coin_sha = f"coin {IMAGE_NAME}"[:64].ljust(64, "0")
    rows = [dict(verdict_row(archive, IMAGE_NAME, "ok", 0.47), conclusion="inconclusive", inconclusive_band=0.1,
                 model_sha256=coin_sha, model_name=f"coin {IMAGE_NAME}"),
            dict(verdict_row(archive, LINK_NAME, "ok", 0.9), conclusion="fake", inconclusive_band=0.1,
                 model_sha256="f" * 64, model_name=f"gone {LINK_NAME}"),
            verdict_row(archive, HTML_NAME, "error", error_class="NOT_VIDEO")]
    pq.write_table(rows_to_table(rows), out / "part-run-1-000000.parquet")
    app = AppTest.from_function(_browse_page, args=(str(models), str(out)), default_timeout=120).run()
    assert not app.exception and not app.error
    read = _read(app)
    assert [m.label for m in app.metric] == ["Files", "Real", "Fake", "Inconclusive", "Untested", "Errors"]
    assert [m.value for m in app.metric] == ["3", "0", "1", "1", "0", "1"]
    assert f"{app.caption[0].value and as_read(app.caption[0].value)}".startswith(f"3 rows in {out};")
    assert f"coin {IMAGE_NAME} · sha256 {coin_sha[:16]} · 1 file" in read
    assert f"gone {LINK_NAME} · sha256 {'f' * 16} · 1 file" in read
    assert any(body.startswith("Its card is not available here") for body in read)
    assert [as_read(w.value) for w in app.warning] == [
        "Do not rely on this model: test AUC 0.52 is near chance (0.5): the model does not tell real from fake; "
        "it calls every test video real."]
    app.multiselect(key="filter_conclusion").set_value(["inconclusive"]).run()
    assert any(body == "2 of 3 files match." for body in _read(app))  # the inconclusive file and the error


def test_browse_page_reads_around_a_damaged_part_and_says_how_many(tmp_path, models):
    """Night-safety item 1: the page counts the other parts' rows and says one part was skipped."""
    out = tmp_path / "out"
    out.mkdir()
    archive = tmp_path / "archive"
    pq.write_table(rows_to_table([verdict_row(archive, "a.mp4", "ok", 0.9)]), out / "part-run-1-000000.parquet")
    pq.write_table(rows_to_table([verdict_row(archive, "b.mp4", "ok", 0.9)]), out / "part-run-2-000000.parquet")
    damaged = out / "part-run-2-000000.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])
    app = AppTest.from_function(_browse_page, args=(str(models), str(out)), default_timeout=60).run()
    assert not app.exception and not app.error
    assert [m.value for m in app.metric] == ["1", "0", "1", "0", "0", "0"]
    assert [as_read(w.value) for w in app.warning][0] == (
        "1 damaged verdict part(s) could not be read and were skipped: their rows are not counted here (the "
        "server's log names them). The next `dfscan run` moves them to _quarantine/ and scans their files again.")
    assert damaged.exists()  # the page moves nothing
