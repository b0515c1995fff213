"""The "Browse results" page: counts, the models behind the rows, a p_fake histogram, a filtered table
and a row's frames. Every file name, model name, card field and message from the folder is shown as
text (``text.as_text``), never as Markdown."""

from __future__ import annotations

import sys
import traceback

import altair as alt
import streamlit as st

from dfscan.kernels.verdict_rule import CONCLUSIONS
from dfscan.kernels.export import boxed_frames
from dfscan.kernels.trust import format_p_fake
from dfscan.scanner.webapp import verdicts as vd
from dfscan.scanner.webapp.plain_errors import plain_words
from dfscan.scanner.webapp.result_view import BOX_LEGEND
from dfscan.scanner.webapp.settings import AppSettings
from dfscan.scanner.webapp.text import as_text
from dfscan.scanner.webapp.widgets import cached_discovery, error_with_details, frame_grid, trust_notes

MAX_TABLE_ROWS = 5000  # rows sent to the browser; the filters narrow the rest
MAX_CHOICES = 1000  # files offered for "show frames"


@st.cache_resource(max_entries=4, ttl=600, show_spinner="Reading verdicts…")
def _load(folder: str, signature: tuple) -> vd.Verdicts:  # noqa: ARG001 - the signature keys the cache
    return vd.load(folder)


def render(settings: AppSettings) -> None:
    st.title("Browse results")
    folder = st.text_input("Verdicts folder", value=settings.verdicts or "", key="verdicts_folder",
                           placeholder="OUT_DIR of dfscan run",
                           help="The --out folder of `dfscan run`: a Parquet dataset of verdict rows.")
    if not folder.strip():
        st.info("Type the path of a verdicts folder (the --out of `dfscan run`) and press Enter.")
        return
    try:
        data = _load(folder.strip(), vd.signature(folder.strip()))
    except vd.VerdictsError as exc:
        st.error(as_text(exc))
        return
    frame = data.newest
    for alarm in data.alarms:  # first: what the rows together say about each model
        st.warning(as_text(f"Alarm for {alarm['model_name'] or 'an unnamed model'}: {alarm['message']}."))
    notes = vd.damage_notes(data)
    if notes:  # text, never Markdown: a part's name and pyarrow's words are the folder's
        st.warning("  \n".join(as_text(note) for note in notes))
    _summary(data)
    if frame.empty:
        return
    _models(data, settings.models)
    filtered = _filters(frame)
    _table(filtered, data.files)
    _frames_on_demand(filtered, data.folder, settings.models)


def _summary(data: vd.Verdicts) -> None:
    counts = vd.counts(data)
    with st.container(key="counts"):
        columns = st.columns(6)
        for column, (label, outcome) in zip(columns, (("Files", "files"), ("Real", "real"), ("Fake", "fake"),
                                                      ("Inconclusive", "inconclusive"), ("Untested", "untested"),
                                                      ("Errors", "error"))):
            column.metric(label, counts[outcome])
    st.caption(f"{data.rows} rows in {as_text(data.folder)}; each file counts once, by its newest row. "
               "Inconclusive: p_fake within the model's band around its threshold. Untested: the file lies "
               "outside what the model was measured on (the row's untested_reason says why), so its p_fake is "
               "not evidence.")
    if data.newest.empty:
        return
    left, right = st.columns(2)
    with left:
        st.markdown("**By error class**")
        errors = vd.error_counts(data)
        if errors.empty:
            st.caption("No errors.")
        else:
            errors = errors.assign(error_class=errors["error_class"].map(as_text),  # st.table renders Markdown
                                   meaning=errors["error_class"].map(lambda c: as_text(plain_words(c))))
            with st.container(key="error_classes"):
                st.table(errors.set_index("error_class"))
    with right:
        st.markdown("**p_fake of the ok files**")
        bins = vd.histogram(data.newest)
        chart = alt.Chart(bins).mark_bar().encode(
            x=alt.X("start:Q", bin="binned", title="p_fake", scale=alt.Scale(domain=[0, 1])), x2="end:Q",
            y=alt.Y("files:Q", title="files", axis=alt.Axis(tickMinStep=1, format="d")),
            tooltip=["start", "end", "files"])
        st.altair_chart(chart, height=220)


def _models(data: vd.Verdicts, model_paths: tuple[str, ...]) -> None:
    """Each model behind the rows, with what its card says it is worth (when the app lists it)."""
    st.subheader("Models")
    for number, model in enumerate(vd.row_models(data, cached_discovery(model_paths).models)):
        with st.container(border=True, key=f"row-model-{number}"):
            st.markdown(f"**{as_text(model.name or 'unnamed model')}** · sha256 {as_text(model.sha256[:16])} · "
                        f"{model.files} file{'s' if model.files != 1 else ''}")
            if model.trust is None:
                st.caption("Its card is not available here: no listed model has this sha256 (add the model's "
                           "folder to the sidebar's models to see its measured quality).")
            else:
                trust_notes(model.trust)


def _filters(frame):
    st.subheader("Files")
    first, second = st.columns(2)
    statuses = first.multiselect("Status", vd.STATUSES, default=list(vd.STATUSES), key="filter_status")
    wanted = second.multiselect("Conclusion", CONCLUSIONS, default=list(CONCLUSIONS), key="filter_conclusion")
    third, fourth = st.columns(2)
    p_range = third.slider("p_fake", 0.0, 1.0, (0.0, 1.0), step=0.01, key="filter_p_fake")
    text = fourth.text_input("Path contains", key="filter_path")
    return vd.filter_rows(frame, statuses, wanted, p_range, text)


def _table(filtered, files: int) -> None:
    shown = filtered.head(MAX_TABLE_ROWS)
    note = f" (the first {MAX_TABLE_ROWS} are shown)" if len(filtered) > MAX_TABLE_ROWS else ""
    st.caption(f"{len(filtered)} of {files} files match{note}.")
    shown = shown.assign(p_fake=shown["p_fake"].map(lambda p: None if p is None or p != p else format_p_fake(p)))
    st.dataframe(shown[[c for c in vd.TABLE_COLUMNS if c in shown.columns]], hide_index=True, key="verdict_table",
                 column_config={"p_fake": st.column_config.TextColumn(help="Never rounded to certainty: "
                                                                      "above 0.99 reads > 0.99."),
                                "scanned_at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})
    st.download_button("Download CSV", vd.export_csv(filtered), file_name="dfscan-verdicts.csv", mime="text/csv",
                       key="verdicts_csv", help="The matching files, one row each (the table's columns).")


def _frames_on_demand(filtered, folder: str, model_paths: tuple[str, ...]) -> None:
    if filtered.empty:
        return
    st.subheader("Frames of a file")
    rows = filtered.head(MAX_CHOICES)
    several_archives = rows["archive"].nunique(dropna=False) > 1
    labels = [f"{path}  ({archive})" if several_archives else path
              for path, archive in zip(rows["path"], rows["archive"].fillna(""))]
    # No key: when the filters change the offered files, the choice starts afresh at the first one.
    # Options are plain text in the page (the browser test plants Markdown in them).
    choice = st.selectbox("File", options=list(range(len(labels))), format_func=lambda i: labels[i])
    row = rows.iloc[choice].to_dict()
    wanted = (folder, row.get("archive"), row["path"])
    if st.button("Show frames", key="show_frames"):
        st.session_state["frames_request"] = wanted
    if st.session_state.get("frames_request") != wanted:
        return
    shown = st.session_state.get("frames_shown")
    if shown is None or shown[0] != wanted:
        with st.spinner(f"Reading {as_text(row['path'])}…"):
            try:
                clip, match = vd.read_row_frames(folder, row, _settings_for(row, model_paths))
            except Exception as exc:  # noqa: BLE001 - shown in the page, traceback in the log
                traceback.print_exc(file=sys.stderr)
                error_with_details(f"{row['path']}: the file could not be read again", type(exc).__name__, str(exc))
                return
        shown = st.session_state["frames_shown"] = (wanted, clip, match)
    _, clip, match = shown
    file = vd.row_file(row)
    if not clip.ok:
        error_with_details(f"{file}: {plain_words(clip.error.error_class)}", clip.error.error_class.value,
                           clip.error.message)
        return
    indices = [int(i) for i in clip.indices]
    what = "face crops of the same" if clip.faces is not None and clip.faces.found else "the same"
    if match is True:
        st.success(f"{as_text(file)}: {what} {len(indices)} frames the scan used.")
    elif match is False:
        recorded = vd.recorded_indices(folder, row)
        st.warning(f"{as_text(file)}: these frames differ from the scan's {recorded}; "
                   "the file may have changed since it was scanned.")
    if clip.faces is not None:
        # The whole frames with the square the model saw on each, then what it saw.
        frame_grid(boxed_frames(clip), indices, key="row-boxed")
        st.caption(BOX_LEGEND)
        st.caption("What the model saw:" if clip.faces.found else
                   "No face was found often enough: the model saw these whole frames.")
    frame_grid(clip.frames, indices, key="row-frames")


def _settings_for(row: dict, model_paths: tuple[str, ...]) -> dict:
    """How the model that scanned the row reads a clip (its card's frame size, crop and face settings),
    when that model is listed; else the default size and the row's own crop."""
    sha = row.get("model_sha256")
    for entry in cached_discovery(model_paths).models:
        if sha and entry.sha256 == sha:
            return entry.card.clip_settings()
    return {"size": vd.DEFAULT_FRAME_SIZE, "crop": "face" if row.get("crop") == "face" else "frame"}
