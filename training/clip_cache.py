"""The clip cache: decoded training clips, read through the scanner's own pipeline and kept in memory.

Videos are read only through ``kernels.clips.ClipReader``, the scanner's own pipeline, so a model is
trained on exactly the frames (sampling, decoder, resize) it will see when it scans.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dfscan.kernels.clips import ClipReader
from dfscan.kernels.errors import VideoError
from dfscan.kernels.scope import ClipFacts
from dfscan.training.layouts import VideoItem

def _host(frames) -> np.ndarray:
    """Clip frames in host memory (dali-gpu leaves them on the GPU)."""
    if isinstance(frames, np.ndarray):
        return frames
    import keras

    return np.asarray(keras.ops.convert_to_numpy(frames))


class ClipSource:
    """Decoded clips by (path, temporal offset), read through ``ClipReader`` and cached in memory.

    The training sets this is meant for are small; above ``max_cache_bytes`` clips are re-read each
    time instead of cached. Offsets are drawn from a few values, so temporal jitter costs at most
    2 * max_offset + 1 decodes per video over a whole run, not one per epoch.
    """

    def __init__(self, reader: ClipReader, root: str | os.PathLike, max_cache_bytes: int = 2 << 30):
        self.reader = reader
        self.root = Path(root)
        self.max_cache_bytes = max_cache_bytes
        self.errors: dict[str, VideoError] = {}  # relative path -> why it could not be read
        self.facts: dict[str, ClipFacts] = {}  # relative path -> its resolution and face (the card's scope)
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self._cached_bytes = 0

    def get(self, paths: Sequence[str], offsets: Sequence[int] | None = None) -> list[np.ndarray | None]:
        """Clips (F, S, S, 3) uint8 for relative ``paths``; None where a file cannot be read."""
        offsets = [0] * len(paths) if offsets is None else [int(o) for o in offsets]
        keys = list(zip(paths, offsets))
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache and k[0] not in self.errors]
        fresh: dict[tuple[str, int], np.ndarray] = {}
        shifted_failed: set[tuple[str, int]] = set()
        if todo:
            clips = self.reader.read([str(self.root / p) for p, _ in todo], offsets=[o for _, o in todo])
            for key, clip in zip(todo, clips):
                if clip.error is not None or clip.frames is None:
                    if key[1] == 0:
                        self.errors[key[0]] = clip.error
                    else:  # a shifted plan that fails falls back to the plain one below
                        shifted_failed.add(key)
                    continue
                if key[1] == 0:
                    self.facts[key[0]] = ClipFacts.of_clip(clip)
                frames = _host(clip.frames)  # (F, S, S, 3) uint8
                fresh[key] = frames
                if self._cached_bytes + frames.nbytes <= self.max_cache_bytes:
                    self._cache[key] = frames
                    self._cached_bytes += frames.nbytes
        out = []
        for key in keys:
            if key[0] in self.errors:
                out.append(None)
            elif key in shifted_failed:
                out.append(self.get([key[0]])[0])
            else:
                out.append(self._cache.get(key, fresh.get(key)))
        return out

    def readable(self, items: Sequence[VideoItem], chunk: int = 32) -> list[VideoItem]:
        """The items that decode (reading them once, which also fills the cache)."""
        for start in range(0, len(items), chunk):
            self.get([i.path for i in items[start:start + chunk]])
        return [i for i in items if i.path not in self.errors]
