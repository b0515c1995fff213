"""One checked clip on the "Check a clip" page: its facts, each model's conclusion with the card's
measured quality and the one sentence that explains p_fake, the sampled frames, and a closer look at
one frame at source resolution. File, model and card text is shown as text (``text.as_text``)."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

from dfscan.kernels.errors import VideoError
from dfscan.kernels.export import DETECTED, INTERPOLATED
from dfscan.kernels.verdict_rule import UNTESTED
from dfscan.kernels.trust import Trust, explain_p_fake, format_p_fake
from dfscan.scanner.webapp.check import CheckResult, ModelResult, safe_file_name
from dfscan.scanner.webapp.settings import format_bytes
from dfscan.scanner.webapp.source_frame import source_frame
from dfscan.scanner.webapp.text import as_text
from dfscan.scanner.webapp.widgets import error_with_details, frame_grid, trust_notes

COLUMNS_PER_ROW = 3  # verdict cards side by side; Streamlit stacks them on narrow screens
# The conclusion's badge: inconclusive and untested are neither colour, so neither can be read as a
# verdict at a glance.
BADGES = {"fake": ":red-badge[FAKE]", "real": ":green-badge[REAL]", "inconclusive": ":gray-badge[INCONCLUSIVE]",
          "untested": ":gray-badge[UNTESTED]"}
# The colours of kernels.export.boxed_frames, said in words beside the frames they are drawn on.
BOX_LEGEND = ("Boxes: green, the face the detector found in this frame; amber, the face placed between "
              "detections; a red edge, no face found, so the whole frame was used.")


def facts_line(probe: dict) -> str:
    """The probe's facts in one Markdown line (values shown as text)."""
    fps = f"{probe['fps']:.3f}".rstrip("0").rstrip(".") if probe.get("fps") else "?"
    duration = f"{probe['duration_s']:.2f} s" if probe.get("duration_s") is not None else "?"
    facts = [("container", probe["container"]), ("codec", f"{probe['codec']} {probe.get('profile') or ''}".strip()),
             ("resolution", f"{probe['width']}×{probe['height']}"), ("pixel format", probe.get("pix_fmt") or "?"),
             ("frames", f"{probe['frame_count']}"), ("fps", fps), ("duration", duration),
             ("keyframes", len(probe.get("keyframes") or ())), ("audio", "yes" if probe.get("has_audio") else "no"),
             ("file size", format_bytes(probe["size_bytes"]))]
    return " · ".join(f"**{name}** {as_text(value)}" for name, value in facts)


def verdict_card(result: ModelResult, check: CheckResult, trust: Trust | None, key: str) -> None:
    with st.container(border=True, key=key):
        st.markdown(f"**{as_text(result.model_name)}**")
        if result.status != "ok":
            error_with_details(check.plain_error(result.error_class), result.error_class, result.error_message)
        else:
            st.markdown(f"conclusion {BADGES[result.conclusion]}")
            if result.conclusion == UNTESTED:
                # The reason first: an editor must not act on a score the model was never measured for.
                st.info(as_text(f"Untested: {result.untested_reason}. Its score "
                                f"(p_fake {format_p_fake(result.p_fake)}) is not evidence either way."))
            else:
                st.metric("p_fake", format_p_fake(result.p_fake))
            st.caption(as_text(explain_p_fake(result.threshold, result.inconclusive_band)))
        if trust is not None:
            trust_notes(trust)
        st.caption(f"threshold {result.threshold:g} · {result.frames} frames at {result.size} px, "
                   f"{as_text(result.sampling)} · sha256 {as_text(result.model_sha256[:16])}…")


def show_clip(check: CheckResult, number: int, read_bytes: Callable[[], bytes], trusts: dict[str, Trust]) -> None:
    """The clip's section; ``read_bytes`` gives the uploaded bytes again for a closer look at a frame,
    ``trusts`` each model's trust by model path."""
    st.divider()
    file_error = check.file_error
    if file_error:
        error_with_details(f"{check.file} cannot be checked: {check.plain_error(file_error[0])}.", *file_error)
        return
    st.subheader(as_text(check.file))
    if check.probe:
        st.markdown(facts_line(check.probe))
    st.caption(f"sha256 {as_text(check.clip_sha256)}")
    for start in range(0, len(check.results), COLUMNS_PER_ROW):
        row = check.results[start:start + COLUMNS_PER_ROW]
        for offset, (column, result) in enumerate(zip(st.columns(COLUMNS_PER_ROW), row)):
            with column:
                verdict_card(result, check, trusts.get(result.model_path), key=f"verdict-{number}-{start + offset}")
    for shape, view in enumerate(check.views):
        clip = view.clip
        st.caption(f"{view.frames} frames at {view.size}×{view.size} px, {as_text(view.sampling)} sampling"
                   f"{f', decoded with {as_text(clip.decoder)}' if clip.decoder else ''} — seen by "
                   + ", ".join(as_text(name) for name in view.models))
        if clip.ok and view.boxed is not None:
            faces = clip.faces
            st.caption(f"Face crops (margin {faces.margin:g}): the face was found in {faces.face_frames} of the "
                       f"{faces.detected_on} frames the detector saw" if faces.found else
                       "No face was found often enough: these models saw whole frames, not face crops.")
            frame_grid(view.boxed, [int(i) for i in clip.indices], key=f"boxed-{number}-{shape}")
            st.caption(BOX_LEGEND)
            st.caption("What the models saw:")
        if clip.ok:
            frame_grid(clip.frames, [int(i) for i in clip.indices], key=f"frames-{number}-{shape}")
        else:
            error_with_details(check.plain_error(clip.error.error_class.value), clip.error.error_class.value,
                               clip.error.message)
    _look_closer(check, number, read_bytes)


def sampled_indices(check: CheckResult) -> list[int]:
    """Every frame index any model saw, once each, in order."""
    return sorted({int(i) for view in check.views if view.clip.ok for i in view.clip.indices})


def _look_closer(check: CheckResult, number: int, read_bytes: Callable[[], bytes]) -> None:
    indices = sampled_indices(check)
    if not indices:
        return
    with st.container(key=f"closer-{number}"):
        left, right = st.columns([1, 3])
        index = left.selectbox("Look closer at frame", indices, key=f"closer-index-{number}",
                               help="The frame decoded at the video's own resolution, upright as a player shows it.")
        if not right.button("Show at source resolution", key=f"closer-show-{number}"):
            return
        try:
            with tempfile.TemporaryDirectory(prefix="dfscan-app-") as folder:
                path = Path(folder) / safe_file_name(check.file)
                path.write_bytes(read_bytes())
                frame = source_frame(str(path), int(index))  # (H, W, 3) uint8
        except (VideoError, ValueError, OSError) as exc:
            traceback.print_exc(file=sys.stderr)
            error_with_details(f"frame {index} cannot be shown", type(exc).__name__, str(exc))
            return
        box = face_box_at(check, int(index))
        if box is not None:
            frame = draw_box(frame, *box)
        st.image(frame, caption=f"frame {index} at {frame.shape[1]}×{frame.shape[0]} px"
                 + (" with the face the models saw (green: detected here; amber: placed between detections)"
                    if box is not None else ""), width="content")


def face_box_at(check: CheckResult, index: int) -> tuple[tuple[float, float, float, float], bool] | None:
    """The square a face model cut at source frame ``index`` (display pixels, x, y, w, h) and whether
    the face was detected there; None where no face model saw a face in that frame."""
    for view in check.views:
        faces, clip = view.clip.faces, view.clip
        if not clip.ok or faces is None or not faces.found:
            continue
        positions = [p for p, i in enumerate(clip.indices) if int(i) == index]
        if positions:
            box = tuple(float(v) for v in faces.crop_boxes[positions[0]])
            return box, bool(faces.detected[positions[0]])
    return None


def draw_box(frame: np.ndarray, box: tuple[float, float, float, float], detected: bool) -> np.ndarray:
    """``frame`` with ``box`` drawn in the sheet's colours.  (H, W, 3) uint8 -> (H, W, 3) uint8"""
    image = Image.fromarray(np.ascontiguousarray(frame))
    x, y, w, h = box
    width = max(2, round(max(frame.shape[:2]) / 320))
    ImageDraw.Draw(image).rectangle([x, y, x + w - 1, y + h - 1], outline=DETECTED if detected else INTERPOLATED,
                                    width=width)
    return np.asarray(image)
