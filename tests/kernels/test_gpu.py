"""The GPU path: NVDEC through DALI ``mixed`` (``dali-gpu``) and through PyNvVideoCodec (``nvdec``).
Skipped without a GPU.

Each test asserts what only a GPU decoder can satisfy: the clip was decoded by the decoder asked for
(no silent fallback to PyAV), its frames live in GPU memory, and their pixels match PyAV's decoding
of the same frames.
"""

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.errors import ErrorClass
from dfscan.kernels.probe import probe
from dfscan.kernels.resize import mean_abs_difference
from tests.kernels.encodings import HEVC_10_BIT
from tests.media import read_index, write_index_video

pytestmark = pytest.mark.gpu


def on_gpu(tensor) -> bool:
    """Whether a framework tensor lives in GPU memory (JAX or TensorFlow)."""
    devices = getattr(tensor, "devices", None)
    if callable(devices):
        return all(device.platform == "gpu" for device in devices())
    return "GPU" in str(getattr(tensor, "device", ""))


def assert_gpu_clip(clip, decoder: str, size: int) -> None:
    assert clip.ok, clip.error
    assert (clip.decoder, clip.fallback_from) == (decoder, None)
    assert on_gpu(clip.frames), f"{decoder} returned frames outside GPU memory"
    frames = np.asarray(clip.frames)  # copies from the GPU for the check only
    assert [read_index(frame) for frame in frames] == clip.indices.tolist()
    assert mean_abs_difference(frames, PyAVDecoder(size).decode_clip(clip.probe, clip.indices)) < 3.0


@pytest.mark.parametrize("decoder", ["dali-gpu", "nvdec"])
@pytest.mark.parametrize("sampling", ["uniform", "keyframe"])
def test_gpu_frames_are_the_planned_frames_in_gpu_memory(tmp_path, decoder, sampling):
    path = str(write_index_video(tmp_path / "gpu", 61, "h264", width=256, height=192))
    reader = ClipReader(ClipSpec(frames=8, size=32, sampling=sampling, decoder=decoder), gpu=True)
    (clip,) = reader.read([path])
    assert_gpu_clip(clip, decoder, 32)


@pytest.mark.parametrize("decoder", ["dali-gpu", "nvdec"])
def test_gpu_batch_stays_on_device(tmp_path, decoder):
    paths = [str(write_index_video(tmp_path / f"g{i}", 30, "h264")) for i in range(4)]
    reader = ClipReader(ClipSpec(frames=4, size=32, decoder=decoder), gpu=True)
    batch = reader.read_batch(paths, batch_size=4)
    assert [c.decoder for c in batch.clips] == [decoder] * 4
    assert not isinstance(batch.frames, np.ndarray) and on_gpu(batch.frames)
    assert tuple(batch.frames.shape) == (4, 4, 32, 32, 3)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_dali_gpu_reads_the_cut_gops_and_the_whole_file_alike(tmp_path, codec):
    """H.264 with B-frames and open-GOP HEVC, fed as cut GOPs and as whole files: same frames, and
    the cut decodes fewer of them."""
    from dfscan.kernels.decode.dali import DaliDecoder

    facts = probe(write_index_video(tmp_path / f"cut_{codec}", 61, codec, width=256, height=192))
    plans = [np.array([30, 31, 45, 45]), np.array([60, 60, 60, 60])]
    decoded = {}
    for feed in ("gops", "file"):
        decoder = DaliDecoder(size=32, gpu=True, max_batch=2, feed=feed)
        frames, errors = decoder.decode_batch([facts] * 2, plans)
        assert errors == [None, None]
        assert all(on_gpu(f) for f in frames)
        decoded[feed] = [np.asarray(f) for f in frames]
        assert [[read_index(f) for f in clip] for clip in decoded[feed]] == [p.tolist() for p in plans]
        decoded[feed + " frames"] = decoder.frames_decoded
    for cut, whole in zip(decoded["gops"], decoded["file"]):
        np.testing.assert_array_equal(cut, whole)
    assert decoded["gops frames"] < decoded["file frames"] == 46 + 61


def test_dali_gpu_reads_10_bit_hevc(tmp_path):
    path = str(write_index_video(tmp_path / "hevc10", 30, HEVC_10_BIT, width=256, height=192))
    assert probe(path).bit_depth == 10
    (clip,) = ClipReader(ClipSpec(frames=6, size=32, decoder="dali-gpu"), gpu=True).read([path])
    assert_gpu_clip(clip, "dali-gpu", 32)


def test_nvdec_reuses_one_decoder_across_sizes_and_codecs(tmp_path):
    """Three H.264 sizes (portrait too) and an open-GOP HEVC file through one reader: one decoder
    per codec, reconfigured per video, every clip exact."""
    paths = [str(write_index_video(tmp_path / "a", 61, "h264", width=256, height=192)),
             str(write_index_video(tmp_path / "b", 61, "h264", width=192, height=256)),
             str(write_index_video(tmp_path / "c", 61, "hevc", width=320, height=240)),
             str(write_index_video(tmp_path / "d", 61, "h264", width=640, height=480))]
    reader = ClipReader(ClipSpec(frames=8, size=32, sampling="keyframe", decoder="nvdec"), gpu=True)
    for clip in reader.read(paths) + reader.read(paths[:1]):
        assert_gpu_clip(clip, "nvdec", 32)
    pool = reader._batch_decoders["nvdec"]
    assert pool.decoders_created == 2


def test_nvdec_corrupt_file_is_its_own_error_and_the_pool_survives(tmp_path):
    good = write_index_video(tmp_path / "good", 61, "h264", width=256, height=192)
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = bytes(range(256)) * 7 + bytes(208)  # garbage over the middle packets
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    reader = ClipReader(ClipSpec(frames=8, size=32, decoder="nvdec"), gpu=True)
    clips = reader.read([str(good), str(bad), str(good)])
    assert_gpu_clip(clips[0], "nvdec", 32)
    assert_gpu_clip(clips[2], "nvdec", 32)
    # The damaged file is NVDEC's to conceal or refuse; either way it is that file's row alone.
    assert clips[1].ok or clips[1].error.error_class == ErrorClass.DECODE_ERROR


@pytest.mark.parametrize("decoder", ["dali-gpu", "nvdec"])
def test_gpu_frames_of_phone_video_are_upright(tmp_path, decoder):
    from tests.kernels.rotated_media import upright_reference, write_rotated

    path = str(write_rotated(tmp_path / "phone.mp4", 90))
    (clip,) = ClipReader(ClipSpec(frames=4, size=32, decoder=decoder), gpu=True).read([path])
    assert clip.ok and clip.decoder == decoder and on_gpu(clip.frames)
    for frame, index in zip(np.asarray(clip.frames), clip.indices.tolist()):
        assert mean_abs_difference(frame, upright_reference(index + 1, 90, 32)) < 12


@pytest.mark.parametrize("decoder", ["dali-gpu", "nvdec"])
def test_face_mode_frames_keep_their_own_shape_in_gpu_memory(tmp_path, decoder):
    """crop="face" (full_res_cap): no squash. A landscape and a portrait file in one batch, both over
    the cap: each clip at its own capped shape, still on the GPU, the planned frames, PyAV's pixels."""
    probes = [probe(write_index_video(tmp_path / "wide", 30, "h264", width=256, height=192)),
              probe(write_index_video(tmp_path / "tall", 30, "h264", width=192, height=256))]
    plans = [np.array([0, 7, 7, 29]), np.array([3, 4, 20, 21])]
    if decoder == "dali-gpu":
        from dfscan.kernels.decode.dali import DaliDecoder

        backend = DaliDecoder(size=32, gpu=True, max_batch=2, full_res_cap=200)
    else:
        from dfscan.kernels.decode.nvdec import NvdecDecoder

        backend = NvdecDecoder(size=32, full_res_cap=200)
    frames, errors = backend.decode_batch(probes, plans)
    assert errors == [None, None]
    for clip, facts, plan, shape in zip(frames, probes, plans, [(4, 150, 200, 3), (4, 200, 150, 3)]):
        assert on_gpu(clip), f"{decoder} returned face-mode frames outside GPU memory"
        assert tuple(clip.shape) == shape
        host = np.asarray(clip)
        assert [read_index(frame) for frame in host] == plan.tolist()
        assert mean_abs_difference(host, PyAVDecoder(32, full_res_cap=200).decode_clip(facts, plan)) < 3.0
