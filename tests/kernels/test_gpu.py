"""The GPU path: NVDEC decode and GPU resize through DALI ``mixed``. Skipped without a GPU."""

import numpy as np
import pytest

from kernels.clips import ClipReader, ClipSpec
from tests.media import read_index, write_index_video

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("sampling", ["uniform", "keyframe"])
def test_dali_gpu_frames_match_recorded_indices(tmp_path, sampling):
    path = str(write_index_video(tmp_path / "gpu", 61, "h264", width=256, height=192))
    reader = ClipReader(ClipSpec(frames=8, size=32, sampling=sampling, decoder="dali-gpu"), gpu=True)
    (clip,) = reader.read([path])
    assert clip.ok, clip.error
    assert clip.decoder == "dali-gpu"
    frames = np.asarray(clip.frames)  # copies from the GPU for the check only
    assert [read_index(frame) for frame in frames] == clip.indices.tolist()


def test_dali_gpu_batch_stays_on_device(tmp_path):
    paths = [str(write_index_video(tmp_path / f"g{i}", 30, "h264")) for i in range(4)]
    reader = ClipReader(ClipSpec(frames=4, size=32, decoder="dali-gpu"), gpu=True)
    batch = reader.read_batch(paths, batch_size=4)
    assert not isinstance(batch.frames, np.ndarray)
    assert tuple(batch.frames.shape) == (4, 4, 32, 32, 3)
