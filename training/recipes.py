"""Training recipes: named sets of training settings that were measured to work, with the time they take.

A recipe is what `dfscan train --recipe NAME` gives a user who holds a dataset: the architecture, the
clip settings and the training schedule that docs/quality.md chose on FaceForensics++'s official
train and val splits, and an estimate of the time a run takes from the rates measured there. Flags
given on the command line still win over the recipe's values (``recipe_settings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    settings: Mapping[str, object]  # TrainConfig fields
    # Rates measured on the development machine (2 CPU cores, no GPU): see docs/quality.md.
    read_seconds_per_video: float  # decode and face detection, once per video (the clip cache keeps it)
    fit_seconds_per_video_epoch: float  # one epoch is one pass over the training videos' (and twins') worth
    # of batches
    measured_on: str

    def estimate_seconds(self, train_videos: int, val_videos: int, test_videos: int = 0, twins: int = 0) -> float:
        """Reading every video once, then every epoch over the training videos and their self-blended
        twins (early stopping may end it sooner)."""
        epochs = int(self.settings["epochs"])
        read = (train_videos + val_videos + test_videos) * self.read_seconds_per_video
        return read + epochs * (train_videos + twins) * self.fit_seconds_per_video_epoch

    def estimate_line(self, train_videos: int, val_videos: int, test_videos: int = 0, twins: int = 0) -> str:
        seconds = self.estimate_seconds(train_videos, val_videos, test_videos, twins)
        trained = f"{train_videos} training" + (f" (and up to {twins} self-blended twins)" if twins else "")
        return (f"recipe {self.name}: {trained}, {val_videos} validation and {test_videos} test videos; about "
                f"{_duration(seconds)} at the rates measured on {self.measured_on} (a GPU is faster)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe for recipe in (
        Recipe(
            name="ff-residual",
            summary=("a frame-level CNN on the high-pass residual of the face (residual-cnn), trained on random "
                     "48-pixel squares of 96-pixel face crops, 16 frames a video, scored as the mean over frames"),
            settings={"arch": "residual-cnn", "crop": "face", "face_margin": 1.0, "size": 96, "frames": 16,
                      "face_detect_frames": 8, "spatial_crop": 48, "photometric": False, "max_temporal_offset": 0,
                      "batch_size": 4, "lr": 1e-3, "epochs": 50, "early_stopping_patience": 50,
                      # the whole of FF++ c23 (about 6,000 videos) as 16 frames of 96 x 96: 2.7 GB of clips
                      "lr_patience": 50, "cache_mb": 3072},
            # docs/quality.md: 126 videos read and scored in 100-108 s; 50 epochs over 92 videos (122 items
            # with twins) fitted in 496-554 s on an otherwise idle machine
            read_seconds_per_video=0.8,
            fit_seconds_per_video_epoch=0.09,
            measured_on="2 CPU cores",
        ),
    )
}


def recipe_settings(name: str, given: Mapping[str, object]) -> dict[str, object]:
    """The TrainConfig fields of recipe ``name`` overlaid with ``given`` (what the user set himself).
    ValueError for an unknown name."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}")
    return {**RECIPES[name].settings, **given, "recipe": name}
