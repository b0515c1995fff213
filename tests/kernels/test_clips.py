"""ClipReader's routing and its second try: NVDEC's minimum sizes, and a file a DALI backend fails
retried on PyAV, with the clip saying which decoder answered. The face stage (crop="face") on every
CPU decoder and both sampling modes, with a real face (tests/face_media.py): crops cut from the
full-resolution frame, padded with black at the border."""

import dataclasses

import numpy as np
import pytest

from kernels.clips import ClipReader, ClipSpec, decoded_rects
from kernels.decode import choose_decoder
from kernels.decode.dali import DaliDecoder
from kernels.decode.pyav import PyAVDecoder
from kernels.errors import ErrorClass, VideoError
from kernels.probe import probe
from kernels.faces import DetectionCache, Detections, MtcnnDetector
from kernels.resize import crop_resize, mean_abs_difference, resize_frames
from tests.face_media import frame_with_portrait, moving_lefts, pasted_face_box, write_face_video
from tests.media import read_index, write_index_video


def test_nvdec_minimum_sizes_route_small_files_elsewhere(tmp_path):
    """NVDEC decodes HEVC from 144x144 and VP9 from 128x128 up: smaller files never reach it."""
    small_hevc = probe(write_index_video(tmp_path / "small_hevc", 5, "hevc", width=128, height=96))
    large_hevc = probe(write_index_video(tmp_path / "large_hevc", 5, "hevc", width=256, height=192))
    small_vp9 = probe(write_index_video(tmp_path / "small_vp9", 5, "vp9", width=96, height=96))
    assert choose_decoder(small_hevc, "auto", gpu=True) == "pyav"
    assert choose_decoder(small_hevc, "dali-gpu", gpu=True) == "pyav"
    assert choose_decoder(large_hevc, "auto", gpu=True) == "dali-gpu"
    assert choose_decoder(small_vp9, "auto", gpu=True) == "dali-cpu"
    assert choose_decoder(dataclasses.replace(large_hevc, width=8192, height=8200), "auto", gpu=True) == "pyav"


def test_a_file_dali_fails_is_retried_on_pyav(tmp_path, monkeypatch):
    paths = [str(write_index_video(tmp_path / f"v{i}", 30, "vp9")) for i in range(3)]
    real = DaliDecoder.decode_batch

    def failing_the_second(self, probes, plans):
        frames, errors = real(self, probes, plans)
        errors = [VideoError(ErrorClass.DECODE_ERROR, "DALI: stand-in failure") if p.path == paths[1] else e
                  for p, e in zip(probes, errors)]
        return [None if p.path == paths[1] else f for p, f in zip(probes, frames)], errors

    monkeypatch.setattr(DaliDecoder, "decode_batch", failing_the_second)
    reader = ClipReader(ClipSpec(frames=4, size=32, decoder="dali-cpu"), gpu=False)
    clips = reader.read(paths)
    assert [c.ok for c in clips] == [True, True, True]
    assert [c.decoder for c in clips] == ["dali-cpu", "pyav", "dali-cpu"]
    assert [c.fallback_from for c in clips] == [None, "dali-cpu", None]
    assert [read_index(f) for f in np.asarray(clips[1].frames)] == clips[1].indices.tolist()


def test_a_file_neither_decoder_reads_keeps_pyavs_error(tmp_path, monkeypatch):
    paths = [str(write_index_video(tmp_path / f"v{i}", 30, "vp9")) for i in range(2)]
    real_dali, real_pyav = DaliDecoder.decode_batch, PyAVDecoder.decode_clip_concealed

    def dali_failing_the_last(self, probes, plans):
        frames, errors = real_dali(self, probes, plans)
        return frames[:-1] + [None], errors[:-1] + [VideoError(ErrorClass.DECODE_ERROR, "DALI: stand-in")]

    def pyav_failing_the_last(self, facts, indices):
        if facts.path == paths[-1]:
            raise VideoError(ErrorClass.DECODE_ERROR, "PyAV: stand-in")
        return real_pyav(self, facts, indices)

    monkeypatch.setattr(DaliDecoder, "decode_batch", dali_failing_the_last)
    monkeypatch.setattr(PyAVDecoder, "decode_clip_concealed", pyav_failing_the_last)
    clips = ClipReader(ClipSpec(frames=4, size=32, decoder="dali-cpu"), gpu=False).read(paths)
    assert clips[0].ok and clips[0].decoder == "dali-cpu"
    assert not clips[1].ok and clips[1].frames is None
    assert (clips[1].error.error_class, clips[1].error.message) == (ErrorClass.DECODE_ERROR, "PyAV: stand-in")
    assert (clips[1].decoder, clips[1].fallback_from) == ("pyav", "dali-cpu")


# --- crop="face": the face stage after decoding ------------------------------------------------------

FACE_VIDEO_FRAMES = 30


@pytest.fixture(scope="module")
def mtcnn():
    pytest.importorskip("mtcnn", reason="MTCNN runs on TensorFlow, which the GPU lending machine lacks")
    return MtcnnDetector()


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    return write_face_video(tmp_path_factory.mktemp("faces") / "face", FACE_VIDEO_FRAMES, "vp9")


class CountingDetector:
    """The real detector, counting its calls and images."""

    def __init__(self, inner):
        self.inner, self.name, self.version = inner, inner.name, inner.version
        self.calls: list[int] = []

    def detect(self, images):
        self.calls.append(len(images))
        return self.inner.detect(images)


def face_spec(**changes) -> ClipSpec:
    fields = dict(frames=6, size=64, crop="face", face_detect_frames=4, face_work_size=640)
    return ClipSpec(**{**fields, **changes})


def reference_crop(left: int, top: int, crop_box, display=(640, 360), size=64, portrait_size=(128, 150)):
    """The crop cut from the frame as it was encoded (full resolution), by the same rule.  (S, S, 3)"""
    frame = frame_with_portrait(left, top, display, portrait_size)[None]  # (1, H, W, 3)
    return crop_resize(frame, decoded_rects(np.array([crop_box]), display, display), size)[0]


@pytest.mark.parametrize("decoder", ["pyav", "dali-cpu"])
@pytest.mark.parametrize("sampling", ["uniform", "keyframe"])
def test_face_crops_follow_the_face_on_every_decoder_and_sampling(face_video, mtcnn, decoder, sampling):
    (clip,) = ClipReader(face_spec(decoder=decoder, sampling=sampling), gpu=False, face_detector=mtcnn).read(
        [str(face_video)])
    assert clip.ok and clip.decoder == decoder, clip.error
    assert (clip.crop, clip.faces.found, clip.faces.detected_on) == ("face", True, 4)
    assert clip.faces.face_frames == 4
    assert np.asarray(clip.frames).shape == (6, 64, 64, 3)
    lefts = moving_lefts(FACE_VIDEO_FRAMES)
    for position, index in enumerate(clip.indices.tolist()):
        truth = np.array(pasted_face_box(lefts[index], 100, 128, 150))
        centre = clip.faces.boxes[position, :2] + clip.faces.boxes[position, 2:] / 2
        assert np.hypot(*(centre - truth[:2] - truth[2:] / 2)) < 6, (position, index)
        expected = reference_crop(lefts[index], 100, clip.faces.crop_boxes[position])
        assert mean_abs_difference(np.asarray(clip.frames[position]), expected) < 8, (position, index)  # 4 pixels off: about 30
    x, y, w, h = clip.faces.median_box
    assert 0 < x < 1 and abs(y - (100 + 110 * 150 / 600) / 360) < 0.03 and abs(h - 55 / 360) < 0.03


def test_face_detection_is_one_batch_per_read_and_no_face_falls_back(tmp_path, face_video, mtcnn):
    """Two videos with a face, one without: one detector call for all; the faceless one gets whole
    frames, the full-resolution frame resized to S x S, and says so."""
    no_face = str(write_index_video(tmp_path / "grid", 30, "vp9", width=256, height=192))
    detector = CountingDetector(mtcnn)
    reader = ClipReader(face_spec(), gpu=False, face_detector=detector)
    clips = reader.read([str(face_video), no_face, str(face_video)])
    assert detector.calls == [12]
    assert [c.crop for c in clips] == ["face", "frame", "face"]
    assert (clips[1].faces.found, clips[1].faces.face_frames, clips[1].faces.median_box) == (False, 0, None)
    whole = PyAVDecoder(64, full_res_cap=1920).decode_clip(clips[1].probe, clips[1].indices)  # (6, 192, 256, 3)
    assert whole.shape == (6, 192, 256, 3)
    np.testing.assert_array_equal(clips[1].frames, resize_frames(whole, 64, 64))
    direct = ClipReader(ClipSpec(frames=6, size=64), gpu=False).read([no_face])[0].frames  # crop="frame"
    assert mean_abs_difference(clips[1].frames, direct) < 3
    assert [read_index(f) for f in clips[1].frames] == clips[1].indices.tolist()
    assert reader.times.faces > 0


def test_a_detection_cache_detects_each_video_once_until_it_changes(tmp_path, mtcnn):
    """Training rereads videos every epoch, at offsets of a frame or two: with a cache, only the first
    read detects; an edited file (new size and mtime) is detected again."""
    video = write_face_video(tmp_path / "face", FACE_VIDEO_FRAMES, "vp9")
    detector = CountingDetector(mtcnn)
    reader = ClipReader(face_spec(), gpu=False, face_detector=detector, detection_cache=DetectionCache())
    first = reader.read([str(video)])[0]
    again = reader.read([str(video)])[0]
    shifted = reader.read([str(video)], offsets=[2])[0]
    assert detector.calls == [4] and len(reader.detection_cache) == 1
    np.testing.assert_array_equal(first.frames, again.frames)
    assert shifted.indices.tolist() != first.indices.tolist() and shifted.faces.face_frames == 4
    write_face_video(tmp_path / "face", FACE_VIDEO_FRAMES + 6, "vp9")  # the same name, new content
    reader.read([str(video)])
    assert detector.calls == [4, 4]
    uncached = ClipReader(face_spec(), gpu=False, face_detector=detector)
    uncached.read([str(video)]), uncached.read([str(video)])
    assert detector.calls == [4, 4, 4, 4]


def test_crop_frame_is_unchanged_and_says_so(face_video):
    (clip,) = ClipReader(ClipSpec(frames=4, size=32), gpu=False).read([str(face_video)])
    assert (clip.crop, clip.faces, clip.frames.shape) == ("frame", None, (4, 32, 32, 3))


def test_read_batch_of_face_crops_has_the_fixed_shape(tmp_path, face_video, mtcnn):
    batch = ClipReader(face_spec(), gpu=False, face_detector=mtcnn).read_batch(
        [str(face_video), str(tmp_path / "missing.webm")], 3)
    assert batch.frames.shape == (3, 6, 64, 64, 3)
    assert [c.crop for c in batch.clips] == ["face", None]
    assert batch.clips[0].faces.found and (batch.frames[1:] == 0).all()


def test_face_crop_on_a_rotated_phone_video(tmp_path, mtcnn):
    """Coded landscape, displayed portrait (rotation 90): boxes are in the displayed frame."""
    video = write_face_video(tmp_path / "phone", 12, "h264", top=300, frame_size=(360, 640), lefts=(40, 200),
                             rotation=90)
    (clip,) = ClipReader(face_spec(), gpu=False, face_detector=mtcnn).read([str(video)])
    assert clip.ok and clip.probe.rotation == 90 and clip.faces.display_size == (360, 640)
    assert clip.crop == "face"
    lefts = moving_lefts(12, 40, 200)
    for position, index in enumerate(clip.indices.tolist()):
        truth = np.array(pasted_face_box(lefts[index], 300, 128, 150))
        centre = clip.faces.boxes[position, :2] + clip.faces.boxes[position, 2:] / 2
        assert np.hypot(*(centre - truth[:2] - truth[2:] / 2)) < 6, (position, index)
        expected = reference_crop(lefts[index], 300, clip.faces.crop_boxes[position], display=(360, 640))
        assert mean_abs_difference(np.asarray(clip.frames[position]), expected) < 8, (position, index)  # 4 pixels off: about 30


def test_face_spec_is_validated():
    for bad in (dict(crop="head"), dict(face_margin=0.9), dict(face_margin=3.5), dict(face_detect_frames=0),
                dict(face_detect_size=32), dict(face_work_size=32)):
        with pytest.raises(ValueError):
            face_spec(**bad)
    assert ClipSpec(crop="face").full_res_cap == 1920 and ClipSpec().full_res_cap is None


class StillFaceDetector:
    """Knows where the still portrait's face is: the GPU machine has no TensorFlow, so no MTCNN, and what
    runs on the device here is the crop and resize, not the detector."""

    name, version = "still", "1"

    def __init__(self, box, display_width: int):
        self.box, self.display_width = np.array([box], dtype=np.float64), display_width

    def detect(self, images):
        return [Detections(self.box * image.shape[1] / self.display_width, np.array([0.99])) for image in images]


@pytest.mark.gpu
@pytest.mark.parametrize("decoder", ["dali-gpu", "nvdec"])
def test_gpu_face_crops_stay_on_the_device_and_match_pyav(tmp_path, decoder):
    video = str(write_face_video(tmp_path / "face", 30, "h264", lefts=(200, 200)))  # the face stays put
    detector = StillFaceDetector(pasted_face_box(200, 100, 128, 150), 640)
    (on_host,) = ClipReader(face_spec(decoder="pyav"), gpu=True, face_detector=detector).read([video])
    reader = ClipReader(face_spec(decoder=decoder), gpu=True, face_detector=detector)
    (clip,) = reader.read([video])
    assert (clip.decoder, clip.crop) == (decoder, "face") and not isinstance(clip.frames, np.ndarray)
    np.testing.assert_allclose(clip.faces.crop_boxes, on_host.faces.crop_boxes, atol=1e-6)
    assert mean_abs_difference(np.asarray(clip.frames), on_host.frames) < 6
    batch = reader.read_batch([video, video], 2)
    assert not isinstance(batch.frames, np.ndarray) and tuple(batch.frames.shape) == (2, 6, 64, 64, 3)


def test_the_still_face_detector_crops_like_mtcnn_on_the_host(tmp_path, mtcnn):
    """The GPU test's stand-in detector gives the crops MTCNN gives, so the device checks real crops."""
    video = str(write_face_video(tmp_path / "face", 30, "vp9", lefts=(200, 200)))
    still = StillFaceDetector(pasted_face_box(200, 100, 128, 150), 640)
    (by_still,) = ClipReader(face_spec(decoder="pyav"), gpu=False, face_detector=still).read([video])
    (by_mtcnn,) = ClipReader(face_spec(decoder="pyav"), gpu=False, face_detector=mtcnn).read([video])
    np.testing.assert_allclose(by_still.faces.crop_boxes, by_mtcnn.faces.crop_boxes, atol=6)  # display pixels


def test_face_stage_on_framework_tensors_equals_numpy(face_video, mtcnn, monkeypatch):
    """The GPU decoders hand over framework tensors: the device dry run sends dali-cpu's frames the same
    way on the CPU, so the tensor path (frames picked, unsquashed and cut in Keras ops) runs here."""
    from kernels.decode.dali import DRY_RUN_HAND_OFF

    (as_numpy,) = ClipReader(face_spec(decoder="dali-cpu"), gpu=False, face_detector=mtcnn).read([str(face_video)])
    monkeypatch.setenv(DRY_RUN_HAND_OFF, "1")
    (as_tensor,) = ClipReader(face_spec(decoder="dali-cpu"), gpu=False, face_detector=mtcnn).read([str(face_video)])
    assert isinstance(as_numpy.frames, np.ndarray) and not isinstance(as_tensor.frames, np.ndarray)
    assert as_tensor.crop == "face"
    np.testing.assert_array_equal(as_tensor.faces.crop_boxes, as_numpy.faces.crop_boxes)
    np.testing.assert_array_equal(np.asarray(as_tensor.frames), as_numpy.frames)
