"""Tiny generated clips under FaceForensics++'s real names: a real video for each id of a pair and a
Deepfakes fake each way, for tests that read and train on an FF++ tree."""

from __future__ import annotations

from pathlib import Path

from tests.media import write_index_video

# The first official pair of each part (training/data/faceforensics_splits/{train,val,test}.json).
FIRST_PAIRS = {"train": ("071", "054"), "val": ("720", "672"), "test": ("953", "974")}


def write_ff_tree(root: Path, parts: tuple[str, ...] = ("train", "val"), frames: int = 18) -> list[str]:
    """Four c23 videos per part (reals a and b, fakes a_b and b_a); returns their relative paths."""
    written = []
    for part in parts:
        a, b = FIRST_PAIRS[part]
        for relative in (f"original_sequences/youtube/c23/videos/{a}.mp4",
                         f"original_sequences/youtube/c23/videos/{b}.mp4",
                         f"manipulated_sequences/Deepfakes/c23/videos/{a}_{b}.mp4",
                         f"manipulated_sequences/Deepfakes/c23/videos/{b}_{a}.mp4"):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            write_index_video(root / relative, frames=frames, width=128, height=96)
            written.append(relative)
    return written
