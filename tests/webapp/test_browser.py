"""End to end in headless Chromium: the app runs as `dfscan app` runs it, once for this module.

1. Check a clip: upload a generated clip with two models chosen; each model's card shows the p_fake
   and conclusion that kernels + the model give outside the app, and each grid shows exactly the frames
   the scanner samples. The JSON and CSV exports carry the model sha and the frame indices. Bad input
   (a corrupt file, no models, a file over the upload limit) gets a message in the page, and the layout
   holds at phone width.
2. Browse results: a generated verdicts folder shows its exact counts; the filters narrow the table;
   a file's frames are shown on demand.
3. Hostile names (Markdown images, HTML, javascript: links) in a verdicts folder and a model card are
   shown as text: the browser never requests the planted URLs.
Screenshots go to tmp_path (and to $DFSCAN_SCREENSHOTS for the README, when set).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.webapp.browser import chromium, new_page, require_browser_stack, running_app, save_screenshot, settle
from tests.webapp.data import TINY_MODELS, TINY_SIZE, UNIFORM_4_OF_30, write_verdicts

require_browser_stack()  # skips this module, before any model is built, without the app's stack
pytestmark = pytest.mark.slow
WIDE = {"width": 1100, "height": 1650}
PHONE = {"width": 390, "height": 1600}


@pytest.fixture(scope="module")
def app_url(tiny_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "streamlit.log"
    with running_app([tiny_models], log) as url:
        yield url


@pytest.fixture(scope="module")
def browser(app_url):
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    with new_page(browser, viewport=WIDE, accept_downloads=True) as page:  # every wait: browser.TIMEOUT_MS
        yield page


def _expected(models_dir: Path, clip: Path) -> list[dict]:
    """What each tiny model says about the clip outside the app: kernels' frames, the compiled predictor."""
    from dfscan.kernels.artifact import load_model
    from dfscan.kernels.verdict_rule import conclusion
    from dfscan.kernels.clips import ClipReader, ClipSpec
    from dfscan.kernels.predict import CompiledPredictor

    out = []
    for name, *_ in TINY_MODELS:  # (name, frames, sampling, threshold)
        loaded = load_model(models_dir / name)
        (read,) = ClipReader(ClipSpec(frames=loaded.frames, size=loaded.size, sampling=loaded.sampling)).read([clip])
        predictor = CompiledPredictor(loaded.model, 1, loaded.frames, loaded.size, fake_index=loaded.fake_index)
        p_fake = float(predictor.predict(np.asarray(read.frames)[None])[0])
        out.append({"name": name, "sha256": loaded.sha256, "threshold": loaded.threshold, "p_fake": p_fake,
                    "indices": read.indices.tolist(), "verdict": "fake" if p_fake >= loaded.threshold else "real",
                    "conclusion": conclusion(p_fake, loaded.threshold, loaded.inconclusive_band)})
    return out


def _download(page, button: str) -> str:
    with page.expect_download() as download:
        page.get_by_role("button", name=button).click()
    return Path(download.value.path()).read_text()


def test_check_a_clip_shows_frames_and_a_verdict_per_model(app_url, page, tiny_models, clip_file, tmp_path):
    from playwright.sync_api import expect

    expected = _expected(tiny_models, clip_file)
    page.goto(app_url)
    expect(page.get_by_text("Upload a video to check it.")).to_be_visible()
    # Both models are chosen by default, listed from their cards.
    tags = page.get_by_test_id("stMultiSelect").locator("[data-tag]")
    expect(tags).to_have_text([re.compile(r"^tiny-a · cnn-lstm · 4×32px · uniform · sha [0-9a-f]{12}"),
                               re.compile(r"^tiny-b · cnn-lstm · 6×32px · keyframe · sha [0-9a-f]{12}")])
    page.locator("input[type=file]").set_input_files(str(clip_file))
    # The first check of a fresh app loads TensorFlow and compiles both models: seconds of progress.
    expect(page.get_by_test_id("stProgress")).to_contain_text(re.compile(r"Decoding|Predicting with"))

    for i, model in enumerate(expected):
        card = page.locator(f".st-key-verdict-0-{i}")
        shown = card.get_by_test_id("stMetricValue")
        expect(shown).to_have_text(re.compile(r"^0\.\d{2}$"))
        assert float(shown.inner_text()) == pytest.approx(model["p_fake"], abs=5.1e-3)  # 2 decimals, rounded
        expect(card).to_contain_text(model["name"])
        expect(card).to_contain_text(f"conclusion {model['conclusion'].upper()}")
        expect(card).to_contain_text("Do not rely on this model: no val metrics recorded")  # untrained, unmeasured
        expect(card).to_contain_text(f"threshold {model['threshold']:g} · {len(model['indices'])} frames at 32 px")
        expect(card).to_contain_text(f"sha256 {model['sha256'][:16]}")
        grid = page.locator(f".st-key-frames-0-{i}")  # one grid per clip shape; the two models differ
        expect(grid.locator("img")).to_have_count(len(model["indices"]))
        expect(grid.get_by_test_id("stImageCaption")).to_have_text([f"frame {j}" for j in model["indices"]])
    assert expected[0]["indices"] == UNIFORM_4_OF_30
    assert [m["verdict"] for m in expected] == ["fake", "real"]  # the thresholds of the cards decide
    expect(page.get_by_test_id("stMarkdown").filter(has_text="container")).to_contain_text(
        "container mp4 · codec h264 Main · resolution 128×96 · pixel format yuv420p · frames 30 · fps 25")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    save_screenshot(page, tmp_path / "check-wide.png", "app-check.png")

    exported = json.loads(_download(page, "Download JSON"))["clips"][0]
    assert exported["file"] == clip_file.name and exported["probe"]["frame_count"] == 30
    assert [(r["model_name"], r["model_sha256"], r["frame_indices"], r["verdict"]) for r in exported["results"]] == [
        (m["name"], m["sha256"], m["indices"], m["verdict"]) for m in expected]
    assert [r["p_fake"] for r in exported["results"]] == pytest.approx([m["p_fake"] for m in expected], abs=1e-5)
    rows = list(csv.DictReader(io.StringIO(_download(page, "Download CSV"))))
    assert [(r["model_sha256"], r["frame_indices"]) for r in rows] == [
        (m["sha256"], " ".join(map(str, m["indices"]))) for m in expected]

    page.set_viewport_size(PHONE)  # phone width: no sideways scrolling, the cards stack
    first = page.locator(".st-key-verdict-0-0")
    expect(first).to_be_visible()
    page.wait_for_function(f"() => document.documentElement.scrollWidth <= {PHONE['width']}")  # once laid out
    top, below = first.bounding_box(), page.locator(".st-key-verdict-0-1").bounding_box()
    assert below["y"] >= top["y"] + top["height"] and top["width"] > PHONE["width"] / 2
    save_screenshot(page, tmp_path / "check-phone.png")


def test_bad_input_gets_a_message_in_the_page(app_url, page, tmp_path):
    from playwright.sync_api import expect

    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"this is not a video " * 200)
    page.goto(app_url)
    page.locator("input[type=file]").set_input_files(str(corrupt))
    alert = page.get_by_test_id("stAlert").filter(has_text="cannot be checked")
    expect(alert).to_have_text("broken.mp4 cannot be checked: this is not a video file.")
    page.get_by_text("Technical details").click()  # the class and message, one click away
    expect(page.get_by_test_id("stText").filter(has_text="CONTAINER_INVALID")).to_contain_text(
        "CONTAINER_INVALID: unreadable container")
    assert "dfscan-app-" not in alert.inner_text()  # the upload's name, not its temporary copy

    models = page.get_by_role("textbox", name="Models (files or folders, one per line)")
    models.fill(str(tmp_path / "no-models-here"))
    models.press("Control+Enter")
    expect(page.get_by_text("No models found.")).to_be_visible()
    expect(page.get_by_text("1 model path(s) skipped")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    save_screenshot(page, tmp_path / "bad-input.png")


def test_upload_over_the_size_limit_is_refused_in_the_page(browser, tiny_models, tmp_path):
    from playwright.sync_api import expect

    big = tmp_path / "big.mp4"
    big.write_bytes(np.random.default_rng(0).integers(0, 256, 1_600_000, dtype=np.uint8).tobytes())
    with running_app([tiny_models], tmp_path / "streamlit.log", max_upload_mb=1) as url:
        with new_page(browser, viewport=WIDE) as page:
            page.goto(url)
            expect(page.get_by_text("Videos (mp4, mov, mkv, webm, avi; up to 1.0 MB each)")).to_be_visible()
            page.locator("input[type=file]").set_input_files(str(big))
            expect(page.get_by_test_id("stFileUploader")).to_contain_text(
                re.compile(r"must be 1(\.0)? ?MB or smaller"))
            expect(page.get_by_text("Upload a video to check it.")).to_be_visible()  # nothing was checked
            expect(page.get_by_test_id("stException")).to_have_count(0)


def test_browse_results_shows_exact_counts_filters_and_frames(app_url, page, tmp_path):
    from playwright.sync_api import expect

    written = write_verdicts(tmp_path / "verdicts", tmp_path / "archive")
    page.goto(f"{app_url}/browse")
    folder = page.get_by_role("textbox", name="Verdicts folder")
    folder.fill(str(tmp_path / "verdicts"))
    folder.press("Enter")
    counts = page.locator(".st-key-counts")
    expect(counts.get_by_test_id("stMetricLabel")).to_have_text(["Files", "Real", "Fake", "Inconclusive", "Untested", "Errors"])
    expect(counts.get_by_test_id("stMetricValue")).to_have_text(["6", "1", "3", "0", "0", "2"])
    assert written == {"rows": 8, "files": 6}
    expect(page.get_by_text(f"8 rows in {tmp_path / 'verdicts'}")).to_be_visible()
    classes = page.locator(".st-key-error_classes tbody tr")
    expect(classes).to_have_text([re.compile(r"^DECODE_ERROR\s*1\s*the video is damaged"),
                                  re.compile(r"^NOT_VIDEO\s*1\s*this is not a video file$")])
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(1)
    expect(page.get_by_text("6 of 6 files match.")).to_be_visible()

    path_filter = page.get_by_role("textbox", name="Path contains")
    path_filter.fill("BAD/")
    path_filter.press("Enter")
    expect(page.get_by_text("2 of 6 files match.")).to_be_visible()
    settle(page)
    path_filter.fill("")
    path_filter.press("Enter")
    expect(page.get_by_text("6 of 6 files match.")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Remove real").click()  # no real conclusions: errors stay, the real file goes
    expect(page.get_by_text("5 of 6 files match.")).to_be_visible()
    settle(page)

    files = page.get_by_test_id("stSelectbox").filter(has_text="File")
    files.get_by_role("button", name="Open").click()
    expect(page.get_by_role("option")).to_have_text(
        ["bad/decode.mkv", "bad/notvideo.mp4", "keep/fake.mp4", "other/f2.mp4", "other/f3.mp4"])
    page.get_by_role("option", name="keep/fake.mp4").click()
    expect(files.get_by_role("combobox")).to_have_value("keep/fake.mp4")
    settle(page)
    page.get_by_role("button", name="Show frames").click()
    expect(page.get_by_text("keep/fake.mp4: the same 4 frames the scan used.")).to_be_visible()
    grid = page.locator(".st-key-row-frames")
    expect(grid.get_by_test_id("stImageCaption")).to_have_text([f"frame {j}" for j in UNIFORM_4_OF_30])
    expect(page.get_by_test_id("stException")).to_have_count(0)
    save_screenshot(page, tmp_path / "browse.png", "app-browse.png")


def test_hostile_names_are_shown_as_text_and_never_fetched(app_url, page, tiny_models, tmp_path):
    """A verdicts folder and a model card with planted Markdown and HTML: every name reads as itself,
    and the browser requests none of the planted URLs."""
    import pyarrow.parquet as pq
    from playwright.sync_api import expect

    from dfscan.scanner.verdicts import rows_to_table
    from tests.webapp.browser import free_port
    from tests.webapp.data import verdict_row
    from tests.webapp.stubs import fake_run

    planted = f"127.0.0.1:{free_port()}"
    image, html = f"![x](http://{planted}/p.png).mp4", f"<img src=http://{planted}/q.png onerror=alert(1)>.mp4"
    link, model_name = "[link](javascript:alert(1)).mp4", f"![m](http://{planted}/m.png)"
    near_chance = {"test": {"roc_auc": 0.52, "accuracy": 0.5, "n_videos": 40, "confusion": [[20, 0], [20, 0]]}}
    card = fake_run(tmp_path / "models", "hostile", name=model_name, metrics=near_chance)
    sha = json.loads(card.with_suffix(".json").read_text())["sha256"]
    out, archive = tmp_path / "verdicts", tmp_path / "archive"
    out.mkdir()
    rows = [dict(verdict_row(archive, image, "ok", 0.47), conclusion="inconclusive", inconclusive_band=0.1,
                 model_sha256=sha, model_name=model_name),
            dict(verdict_row(archive, link, "ok", 0.9), conclusion="fake", inconclusive_band=0.1,
                 model_sha256=sha, model_name=model_name),
            dict(verdict_row(archive, html, "error", error_class=f"![c](http://{planted}/c.png)"),
                 error_message=f"cannot open ![e](http://{planted}/e.png)", model_sha256=sha, model_name=model_name)]
    pq.write_table(rows_to_table(rows), out / "part-run-1-000000.parquet")
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{app_url}/browse")
    models = page.get_by_role("textbox", name="Models (files or folders, one per line)")
    models.fill(f"{tiny_models}\n{tmp_path / 'models'}")
    models.press("Control+Enter")
    settle(page)
    folder = page.get_by_role("textbox", name="Verdicts folder")
    folder.fill(str(out))
    folder.press("Enter")
    expect(page.locator(".st-key-counts").get_by_test_id("stMetricValue")).to_have_text(["3", "0", "1", "1", "0", "1"])
    model = page.locator(".st-key-row-model-0")
    expect(model).to_contain_text(f"{model_name} · sha256 {sha[:16]} · 3 files")
    expect(model.get_by_test_id("stAlert")).to_contain_text("Do not rely on this model: test AUC 0.52 is near chance")
    expect(page.locator(".st-key-error_classes tbody tr")).to_have_text(
        [re.compile(rf"^!\[c\]\(http://{re.escape(planted)}/c\.png\)\s*1\s*the file could not be checked$")])
    files = page.get_by_test_id("stSelectbox").filter(has_text="File")
    files.get_by_role("button", name="Open").click()
    expect(page.get_by_role("option")).to_have_text(sorted([image, html, link]))
    page.get_by_role("option", name=image).click()
    settle(page)
    page.get_by_role("button", name="Show frames").click()
    expect(page.get_by_test_id("stAlert").filter(has_text="is not there")).to_have_text(
        f"{archive / image}: the file is not there (moved or deleted)")

    page.goto(app_url)  # Check: the chooser lists the card's name as written
    models = page.get_by_role("textbox", name="Models (files or folders, one per line)")
    models.fill(str(tmp_path / "models"))
    models.press("Control+Enter")
    expect(page.get_by_test_id("stMultiSelect").locator("[data-tag]")).to_have_text(
        [re.compile(rf"^{re.escape(model_name)} · cnn-lstm · 4×32px · uniform · sha .* · UNTRUSTED$")])
    settle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    save_screenshot(page, tmp_path / "hostile.png")
    assert [url for url in requested if planted in url] == []


def test_a_synthetic_only_model_reads_untested_in_grey_with_its_reason(app_url, page, clip_file, tmp_path):
    """An editor checks a real clip with a model trained on synthetic videos only: no FAKE or REAL, but
    UNTESTED in a grey badge and the one sentence of why, and no p_fake figure to act on."""
    from playwright.sync_api import expect

    from dfscan.kernels.scope import UNTESTED_SYNTHETIC
    from tests.models import save_tiny_model

    save_tiny_model(tmp_path / "models" / "synthetic-only", "synthetic-only", 4, TINY_SIZE, threshold=0.0,
                    data="synthetic")  # threshold 0: its verdict is fake, whatever it scores
    page.goto(app_url)
    models = page.get_by_test_id("stSidebar").locator("textarea")  # "Models (files or folders, one per line)"
    models.fill(str(tmp_path / "models"))
    models.press("Control+Enter")
    tags = page.get_by_test_id("stMultiSelect").locator("[data-tag]")
    expect(tags).to_have_text([re.compile(r"^synthetic-only · cnn-lstm · 4×32px")])
    page.locator("input[type=file]").set_input_files(str(clip_file))
    card = page.locator(".st-key-verdict-0-0")
    expect(card).to_contain_text("conclusion UNTESTED")
    expect(card).to_contain_text(f"Untested: {UNTESTED_SYNTHETIC}.")
    expect(card).not_to_contain_text("FAKE")
    expect(card.get_by_test_id("stMetricValue")).to_have_count(0)  # no p_fake figure to act on
    badge = card.get_by_text("UNTESTED", exact=True)
    red, green, blue = map(int, re.findall(r"\d+", badge.evaluate("e => getComputedStyle(e).color"))[:3])
    assert max(red, green, blue) - min(red, green, blue) < 40, (red, green, blue)  # grey, not red or green
    save_screenshot(page, tmp_path / "check-untested.png")
