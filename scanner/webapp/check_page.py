"""The "Check a clip" page: choose models, upload a video, see its frames and each model's verdict."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import streamlit as st

from scanner.webapp.check import CheckResult, ModelResult, run_check, save_upload, validate_upload
from scanner.webapp.models import load_for_prediction
from scanner.webapp.settings import VIDEO_TYPES, AppSettings, format_bytes
from scanner.webapp.widgets import cached_discovery, frame_grid

COLUMNS_PER_ROW = 3  # verdict cards side by side; Streamlit stacks them on narrow screens


@st.cache_resource(max_entries=8, show_spinner=False)
def _predictor(path: str, mtime_ns: int):
    """One loaded model and its compiled predict step per model file version, shared by sessions."""
    return load_for_prediction(path)


def _load(path: str):
    return _predictor(path, Path(path).stat().st_mtime_ns)


def render(settings: AppSettings) -> None:
    st.title("Check a clip")
    st.caption("Upload a video to see the frames the scanner samples and what each chosen model says.")
    discovery = cached_discovery(settings.models)
    if discovery.problems:
        with st.expander(f"{len(discovery.problems)} model path(s) skipped"):
            for problem in discovery.problems:
                st.markdown(f"- {problem}")
    if not discovery.models:
        st.error("No models found. Start the app with `dfscan app --models DIR_OR_FILE`, or type a folder that "
                 "holds trained models (model.keras with model.json beside it) in the sidebar.")
        return
    by_path = {entry.path: entry for entry in discovery.models}
    # No key: when the listed models change, the choice starts afresh instead of naming vanished models.
    chosen = st.multiselect("Models", options=list(by_path), default=list(by_path)[:4],
                            format_func=lambda path: by_path[path].label())
    uploaded = st.file_uploader(f"Video ({', '.join(VIDEO_TYPES)}; up to {format_bytes(settings.max_upload_bytes)})",
                                type=list(VIDEO_TYPES), key="upload")  # server.maxUploadSize is the limit
    if not chosen:
        st.info("Choose at least one model.")
        return
    if uploaded is None:
        st.info("Upload a video to check it.")
        return
    refusal = validate_upload(uploaded.name, uploaded.size, settings.max_upload_bytes)
    if refusal:
        st.error(refusal)
        return
    entries = [by_path[path] for path in chosen]
    key = (uploaded.file_id, tuple(e.path for e in entries))
    if st.session_state.get("check_key") != key:
        result = _check(uploaded, entries)
        if result is None:
            return
        st.session_state["check_key"], st.session_state["check_result"] = key, result
    _show(st.session_state["check_result"])


def _check(uploaded, entries) -> CheckResult | None:
    bar = st.progress(0.0, text=f"Reading {uploaded.name}…")
    try:
        with tempfile.TemporaryDirectory(prefix="dfscan-app-") as folder:
            path = save_upload(uploaded, uploaded.name, Path(folder))
            result = run_check(path, entries, load=_load, file_name=uploaded.name,
                               progress=lambda fraction, text: bar.progress(min(max(fraction, 0.0), 1.0), text=text))
    except Exception as exc:  # noqa: BLE001 - the page says what failed; the traceback goes to the log
        traceback.print_exc(file=sys.stderr)
        bar.empty()
        st.error(f"The check failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return None
    bar.empty()
    return result


def _facts_line(probe: dict) -> str:
    fps = f"{probe['fps']:.3f}".rstrip("0").rstrip(".") if probe.get("fps") else "?"
    duration = f"{probe['duration_s']:.2f} s" if probe.get("duration_s") is not None else "?"
    facts = [("container", probe["container"]), ("codec", f"{probe['codec']} {probe.get('profile') or ''}".strip()),
             ("resolution", f"{probe['width']}×{probe['height']}"), ("pixel format", probe.get("pix_fmt") or "?"),
             ("frames", f"{probe['frame_count']}"), ("fps", fps), ("duration", duration),
             ("keyframes", len(probe.get("keyframes") or ())), ("audio", "yes" if probe.get("has_audio") else "no"),
             ("file size", format_bytes(probe["size_bytes"]))]
    return " · ".join(f"**{name}** {value}" for name, value in facts)


def _verdict_card(result: ModelResult, key: str) -> None:
    with st.container(border=True, key=key):
        st.markdown(f"**{result.model_name}**")
        if result.status != "ok":
            st.error(f"{result.error_class}: {result.error_message}")
        else:
            st.metric("p_fake", f"{result.p_fake:.4f}")
            badge = ":red-badge[FAKE]" if result.verdict == "fake" else ":green-badge[REAL]"
            st.markdown(f"verdict {badge}")
        st.caption(f"threshold {result.threshold:g} · {result.frames} frames at {result.size} px, {result.sampling} · "
                   f"sha256 {result.model_sha256[:16]}…")


def _show(result: CheckResult) -> None:
    file_error = result.file_error
    if file_error:
        st.error(f"{result.file} cannot be checked: {file_error[0]}: {file_error[1]}")
        return
    st.subheader(result.file)
    if result.probe:
        st.markdown(_facts_line(result.probe))
    st.subheader("Verdicts")
    for start in range(0, len(result.results), COLUMNS_PER_ROW):
        row = result.results[start:start + COLUMNS_PER_ROW]
        for offset, (column, model_result) in enumerate(zip(st.columns(COLUMNS_PER_ROW), row)):
            with column:
                _verdict_card(model_result, key=f"verdict-{start + offset}")
    stem = Path(result.file).stem
    left, right, _ = st.columns([1, 1, 2])
    left.download_button("Download JSON", result.to_json(), file_name=f"{stem}.dfscan.json",
                         mime="application/json", key="export_json", on_click="ignore")
    right.download_button("Download CSV", result.to_csv(), file_name=f"{stem}.dfscan.csv", mime="text/csv",
                          key="export_csv", on_click="ignore")
    st.subheader("Sampled frames")
    for number, view in enumerate(result.views):
        clip = view.clip
        label = (f"{view.frames} frames at {view.size}×{view.size} px, {view.sampling} sampling"
                 f"{f', decoded with {clip.decoder}' if clip.decoder else ''} — seen by {', '.join(view.models)}")
        st.caption(label)
        if clip.ok:
            frame_grid(clip.frames, [int(i) for i in clip.indices], key=f"frames-{number}")
        else:
            st.error(f"{clip.error.error_class.value}: {clip.error.message}")
