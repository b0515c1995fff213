"""Self-blended twins: each training real with a face, also trained on as a fake blended with itself.

SBI's finding (Shiohara and Yamasaki, CVPR 2022; ``training.self_blend``): a detector that also sees a real
face pasted back onto itself, slightly moved, rescaled and colour-shifted, learns the traces a paste leaves
rather than the look of one generator or one identity. Here the twin is made from the face crop the model
sees: the face box is the crop's central square of side S / margin. One draw per video (seeded by the run's
seed and the video's path), so a twin is the same fake every epoch, as a real dataset's fake would be.

Twins exist only for training: validation and test stay the dataset's own videos.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from dfscan.kernels.scope import ClipFacts
from dfscan.training.clip_cache import ClipSource
from dfscan.training.layouts import FAKE, REAL, VideoItem
from dfscan.training.self_blend import self_blend_video

# Marks a twin's path: a NUL can be in no file name, so no real video is ever taken for a twin.
TWIN_SUFFIX = "\0self-blend"


def twin_items(items: Sequence[VideoItem], facts: Mapping[str, ClipFacts]) -> list[VideoItem]:
    """A fake twin for every real item whose read found a face (without one there is nothing to blend)."""
    return [VideoItem(item.path + TWIN_SUFFIX, FAKE, item.group) for item in items
            if item.label == REAL and item.path in facts and facts[item.path].face_found]


class TwinSource:
    """A ``ClipSource`` that also gives twins: a twin's path is read as its real video, then self-blended."""

    def __init__(self, source: ClipSource, strength: float, margin: float, seed: int):
        self.source = source
        self.strength = strength
        self.margin = margin
        self.seed = seed
        self._twins: dict[tuple[str, int], np.ndarray] = {}  # small sets only, as the clip cache

    @property
    def errors(self):
        return self.source.errors

    @property
    def facts(self):
        return self.source.facts

    def _blend(self, path: str, offset: int, clip: np.ndarray) -> np.ndarray:
        """(F, S, S, 3) uint8 -> the same shape, the face square blended with a copy of itself."""
        key = (path, offset)
        if key not in self._twins:
            rng = np.random.default_rng([self.seed, zlib.crc32(path.encode())])  # one draw per video
            count, size = clip.shape[0], clip.shape[1]
            side = size / self.margin
            box = np.array([(size - side) / 2, (size - side) / 2, side, side])  # (4,) x, y, w, h in the crop
            self._twins[key] = self_blend_video(clip, np.repeat(box[None], count, axis=0), rng, self.strength)
        return self._twins[key]

    def get(self, paths: Sequence[str], offsets: Sequence[int] | None = None) -> list[np.ndarray | None]:
        offsets = [0] * len(paths) if offsets is None else [int(o) for o in offsets]
        plain = [path.removesuffix(TWIN_SUFFIX) for path in paths]
        clips = self.source.get(plain, offsets)
        return [self._blend(path, offset, clip) if path.endswith(TWIN_SUFFIX) and clip is not None else clip
                for path, offset, clip in zip(paths, offsets, clips)]
