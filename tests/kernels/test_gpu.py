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


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_dali_gpu_reads_the_cut_gops_and_the_whole_file_alike(tmp_path, codec):
    """H.264 with B-frames and open-GOP HEVC, fed as cut GOPs and as whole files: same frames, and
    the cut decodes fewer of them."""
    from kernels.decode.dali import DaliDecoder
    from kernels.probe import probe

    facts = probe(write_index_video(tmp_path / f"cut_{codec}", 61, codec, width=256, height=192))
    plans = [np.array([30, 31, 45, 45]), np.array([60, 60, 60, 60])]
    decoded = {}
    for feed in ("gops", "file"):
        decoder = DaliDecoder(size=32, gpu=True, max_batch=2, feed=feed)
        frames, errors = decoder.decode_batch([facts] * 2, plans)
        assert errors == [None, None]
        decoded[feed] = [np.asarray(f) for f in frames]
        assert [[read_index(f) for f in clip] for clip in decoded[feed]] == [p.tolist() for p in plans]
        decoded[feed + " frames"] = decoder.frames_decoded
    for cut, whole in zip(decoded["gops"], decoded["file"]):
        np.testing.assert_array_equal(cut, whole)
    assert decoded["gops frames"] < decoded["file frames"] == 46 + 61
