"""The "Check a clip" page: choose models, upload one or more videos, see each clip's frames and what
each model concludes, with what its card says the model is worth; export every clip at once."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import streamlit as st

from dfscan.kernels.quiet import quiet_deep_learning_start
from dfscan.scanner.webapp.check import (CheckResult, check_alarms, export_csv, export_json, run_check, save_upload,
                                  validate_upload)
from dfscan.scanner.webapp.models import load_for_prediction
from dfscan.scanner.webapp.result_view import show_clip
from dfscan.scanner.webapp.settings import VIDEO_TYPES, AppSettings, format_bytes
from dfscan.scanner.webapp.text import as_text
from dfscan.scanner.webapp.widgets import cached_discovery

MAX_RESULTS_KEPT = 50  # checked clips remembered per session (a clip removed and added back is not redone)


@st.cache_resource(max_entries=8, show_spinner=False)
def _predictor(path: str, mtime_ns: int):
    """One loaded model and its compiled predict step per model file version, shared by sessions."""
    return load_for_prediction(path)


def _load(path: str):
    return _predictor(path, Path(path).stat().st_mtime_ns)


def render(settings: AppSettings) -> None:
    st.title("Check a clip")
    st.caption("Upload videos to see the frames the scanner samples and what each chosen model concludes.")
    discovery = cached_discovery(settings.models)
    if discovery.problems:
        with st.expander(f"{len(discovery.problems)} model path(s) skipped"):
            for problem in discovery.problems:
                st.text(problem)
    if not discovery.models:
        st.error("No models found. Start the app with `dfscan app --models DIR_OR_FILE`, or type a folder that "
                 "holds trained models (model.keras with model.json beside it) in the sidebar.")
        return
    by_path = {entry.path: entry for entry in discovery.models}
    # No key: when the listed models change, the choice starts afresh instead of naming vanished models.
    # Option labels are plain text in the page, so a card's name is shown as written.
    chosen = st.multiselect("Models", options=list(by_path), default=list(by_path)[:4],
                            format_func=lambda path: by_path[path].label(),
                            help="UNTRUSTED: the model's card shows it cannot tell real from fake (or measured "
                                 "nothing); its verdicts are not evidence.")
    uploads = st.file_uploader(f"Videos ({', '.join(VIDEO_TYPES)}; up to {format_bytes(settings.max_upload_bytes)} "
                               f"each)", type=list(VIDEO_TYPES), key="upload",
                               accept_multiple_files=True)  # server.maxUploadSize is the limit
    if not chosen:
        st.info("Choose at least one model.")
        return
    if not uploads:
        st.info("Upload a video to check it.")
        return
    entries = [by_path[path] for path in chosen]
    quiet_deep_learning_start()  # MTCNN and the models import TensorFlow: not its start-up chatter in the server log
    checks: list[tuple[CheckResult, object]] = []
    for uploaded in uploads:
        refusal = validate_upload(uploaded.name, uploaded.size, settings.max_upload_bytes)
        if refusal:
            st.error(as_text(refusal))
            continue
        result = _remembered(uploaded, entries)
        if result is not None:
            checks.append((result, uploaded))
    if not checks:
        return
    _first_what_went_wrong([result for result, _ in checks], entries)
    _exports([result for result, _ in checks])
    for number, (result, uploaded) in enumerate(checks):
        show_clip(result, number, uploaded.getvalue, {entry.path: entry.trust for entry in entries})


def _remembered(uploaded, entries) -> CheckResult | None:
    """The clip's result for these models, checked once per session."""
    done = st.session_state.setdefault("checks", {})
    key = (uploaded.file_id, tuple(e.path for e in entries))
    if key not in done:
        result = _check(uploaded, entries)
        if result is None:
            return None
        while len(done) >= MAX_RESULTS_KEPT:
            done.pop(next(iter(done)))
        done[key] = result
    return done[key]


def _check(uploaded, entries) -> CheckResult | None:
    bar = st.progress(0.0, text=f"Reading {as_text(uploaded.name)}…")
    try:
        with tempfile.TemporaryDirectory(prefix="dfscan-app-") as folder:
            path = save_upload(uploaded, uploaded.name, Path(folder))
            result = run_check(path, entries, load=_load, file_name=uploaded.name,
                               progress=lambda fraction, text: bar.progress(min(max(fraction, 0.0), 1.0),
                                                                            text=as_text(text)))
    except Exception as exc:  # noqa: BLE001 - the page says what failed; the traceback goes to the log
        traceback.print_exc(file=sys.stderr)
        bar.empty()
        st.error(as_text(f"The check of {uploaded.name} failed: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]}"))
        return None
    bar.empty()
    return result


def _first_what_went_wrong(results: list[CheckResult], entries) -> None:
    """Above every result: the files that could not be checked, and what the clips together say about
    each model (scanner.alarms), so neither is found only after scrolling past all the results."""
    failed = [(result.file, result.plain_error(result.file_error[0])) for result in results if result.file_error]
    if failed and len(results) > 1:
        st.error(f"{len(failed)} of {len(results)} files could not be checked: "
                 + "; ".join(as_text(f"{name} ({words})") for name, words in failed) + ".")
    for alarm in check_alarms(results, entries):
        st.warning(as_text(f"Alarm for {alarm['model_name']}: {alarm['message']}."))


def _exports(results: list[CheckResult]) -> None:
    """One JSON and one CSV holding every clip checked, with each clip's and model's provenance."""
    stem = Path(results[0].file).stem if len(results) == 1 else f"{len(results)}-clips"
    left, right, _ = st.columns([1, 1, 2])
    left.download_button("Download JSON", export_json(results), file_name=f"{stem}.dfscan.json",
                         mime="application/json", key="export_json", on_click="ignore")
    right.download_button("Download CSV", export_csv(results), file_name=f"{stem}.dfscan.csv", mime="text/csv",
                          key="export_csv", on_click="ignore")
