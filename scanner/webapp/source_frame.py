"""One frame of a video at source resolution, upright: the page's "look closer".

The clip decoders (``kernels.decode``) squash every frame to S x S for the model, and none decodes a
frame at its own size, so this is the smallest single-frame path: the probe's exact frame index ->
timestamp table (as ``kernels.decode.pyav`` places frames), a seek to the keyframe at or before it,
decode forward to that timestamp, then ``kernels.resize.upright`` as every decoder turns frames.
"""

from __future__ import annotations

import av
import numpy as np

from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import ProbeLimits, probe
from dfscan.kernels.resize import upright
from dfscan.kernels.sampling import keyframe_at_or_before


def source_frame(path: str, index: int, limits: ProbeLimits = ProbeLimits()) -> np.ndarray:
    """Frame ``index`` (0-based, in presentation order) of ``path`` as a player shows it: the display
    size, rotation applied. Raises ``VideoError`` for a file or an index it cannot give.
    # (display_height, display_width, 3) uint8"""
    facts = probe(path, limits)
    if not 0 <= index < facts.frame_count:
        raise ValueError(f"frame {index} is not in the video ({facts.frame_count} frames)")
    frame_pts = facts.frame_pts
    keys = np.asarray(facts.keyframes, dtype=np.int64)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            position = 0
            if frame_pts is not None and len(frame_pts) == facts.frame_count:
                key = keyframe_at_or_before(keys, index)
                container.seek(int(frame_pts[key]), stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is not None and frame.pts >= frame_pts[index]:
                        return upright(frame.to_ndarray(format="rgb24")[None], facts.rotation)[0]
            else:  # no timestamps to place frames by: count them from the start
                for frame in container.decode(stream):
                    if position == index:
                        return upright(frame.to_ndarray(format="rgb24")[None], facts.rotation)[0]
                    position += 1
    except av.error.FFmpegError as exc:
        raise VideoError(ErrorClass.DECODE_ERROR, f"decoder failed: {exc}") from None
    raise VideoError(ErrorClass.DECODE_ERROR, f"frame {index} could not be decoded")
