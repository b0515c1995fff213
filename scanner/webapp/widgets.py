"""Small Streamlit pieces shared by both pages: the model picker, the frame grid, a model's trust, an
error in plain words with its technical detail one click away. Untrusted text goes through ``as_text``."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from dfscan.kernels.trust import Trust
from dfscan.scanner.webapp.models import Discovery, discover
from dfscan.scanner.webapp.text import as_text

FRAME_WIDTH = 128  # display width of one sampled frame, in CSS pixels


@st.cache_data(ttl=30, show_spinner=False)
def cached_discovery(paths: tuple[str, ...]) -> Discovery:
    return discover(list(paths))


def model_paths_input(default: tuple[str, ...]) -> tuple[str, ...]:
    """The sidebar's model paths, one per line, started from ``--models``."""
    text = st.sidebar.text_area("Models (files or folders, one per line)", value="\n".join(default),
                                key="model_paths", height=100,
                                help="Folders are searched for model.keras files with a model.json card beside.")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def frame_grid(frames: np.ndarray, indices: list[int], key: str) -> None:
    """The sampled frames in reading order, each captioned with its source frame index; they wrap to
    the page width.  frames: (F, S, S, 3) uint8"""
    images = []
    for frame in np.asarray(frames):
        image = Image.fromarray(frame)
        if image.width < FRAME_WIDTH:  # upscale tiny frames without inventing detail
            image = image.resize((FRAME_WIDTH, FRAME_WIDTH * image.height // image.width), Image.NEAREST)
        images.append(image)
    with st.container(key=key):
        st.image(images, caption=[f"frame {i}" for i in indices], width=FRAME_WIDTH)


def trust_notes(trust: Trust) -> None:
    """What the card says the model is worth, in one line; a warning with every problem when the model
    is untrusted (near chance, one class for everything, nothing measured) or synthetic-only."""
    st.caption(f"Measured quality: {as_text(trust.summary())}")
    if trust.untrusted or trust.synthetic:
        heading = "Do not rely on this model" if trust.untrusted else "Trained on synthetic videos only"
        st.warning(f"**{heading}:** " + "; ".join(as_text(w) for w in trust.warnings) + ".")
    elif trust.warnings:
        st.caption("Note: " + "; ".join(as_text(w) for w in trust.warnings) + ".")


def error_with_details(words: str, error_class: str, message: str) -> None:
    """An error in plain words; the technical class and message one click away, as plain text."""
    st.error(as_text(words))
    with st.expander("Technical details"):
        st.text(f"{error_class}: {message}")
