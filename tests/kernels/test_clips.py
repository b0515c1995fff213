"""ClipReader's routing and its second try: NVDEC's minimum sizes, and a file a DALI backend fails
retried on PyAV, with the clip saying which decoder answered. The face stage (crop="face") on every
CPU decoder and both sampling modes, with a real face (tests/face_media.py): crops cut from the
full-resolution frame, padded with black at the border."""

import dataclasses

import numpy as np
import pytest

from dfscan.kernels.clips import ClipReader, ClipSpec, decoded_rects
from dfscan.kernels.decode import choose_decoder
from dfscan.kernels.decode.dali import DaliDecoder
from dfscan.kernels.decode.pyav import PyAVDecoder
from dfscan.kernels.errors import ErrorClass, VideoError
from dfscan.kernels.probe import probe
from dfscan.kernels.faces import DetectionCache, Detections, MtcnnDetector
from dfscan.kernels.resize import crop_resize, mean_abs_difference, resize_frames
from tests.face_media import (frame_with_portrait, moving_lefts, pasted_face_box, skip_without_mtcnn_weights,
                               write_face_video, write_frames_video)
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
    assert [c.fallback_reason for c in clips] == [None, "DECODE_ERROR: DALI: stand-in failure", None]
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
    assert clips[1].fallback_reason == "DECODE_ERROR: DALI: stand-in"


# --- crop="face": the face stage after decoding ------------------------------------------------------

FACE_VIDEO_FRAMES = 30


@pytest.fixture(scope="module")
def mtcnn():
    skip_without_mtcnn_weights()
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


def test_a_reader_decodes_its_next_face_clips_into_the_last_ones_memory_and_crops_them_alike(tmp_path):
    """A face-mode reader gives its cropped full-resolution clips back to PyAV, and decodes the next
    read into them: what it crops then equals what a fresh reader crops."""
    moving = str(write_face_video(tmp_path / "moving", 30, "vp9"))
    still = str(write_face_video(tmp_path / "still", 12, "vp9", lefts=(200, 200)))
    detector = StillFaceDetector(pasted_face_box(200, 100, 128, 150), 640)
    reader = ClipReader(face_spec(decoder="pyav"), gpu=False, face_detector=detector)
    reader.read([moving, moving])
    spares = [buffer for buffers in reader._pyav._spare.values() for buffer in buffers]
    assert len(spares) == 2
    (again,) = reader.read([still])
    kept = [buffer for buffers in reader._pyav._spare.values() for buffer in buffers]
    assert len(kept) == 1 and any(kept[0] is spare for spare in spares)  # decoded into; the unused one dropped
    (fresh,) = ClipReader(face_spec(decoder="pyav"), gpu=False, face_detector=detector).read([still])
    assert again.ok and again.crop == "face"
    np.testing.assert_array_equal(again.frames, fresh.frames)
    dali = ClipReader(face_spec(decoder="dali-cpu"), gpu=False, face_detector=detector)
    assert dali.read([still])[0].decoder == "dali-cpu" and dali._pyav._spare == {}  # only PyAV's own clips


def test_face_stage_on_framework_tensors_equals_numpy(face_video, mtcnn, monkeypatch):
    """The GPU decoders hand over framework tensors: the device dry run sends dali-cpu's frames the same
    way on the CPU, so the tensor path (frames picked, unsquashed and cut in Keras ops) runs here."""
    from dfscan.kernels.decode.dali import DRY_RUN_HAND_OFF

    (as_numpy,) = ClipReader(face_spec(decoder="dali-cpu"), gpu=False, face_detector=mtcnn).read([str(face_video)])
    monkeypatch.setenv(DRY_RUN_HAND_OFF, "1")
    (as_tensor,) = ClipReader(face_spec(decoder="dali-cpu"), gpu=False, face_detector=mtcnn).read([str(face_video)])
    assert isinstance(as_numpy.frames, np.ndarray) and not isinstance(as_tensor.frames, np.ndarray)
    assert as_tensor.crop == "face"
    np.testing.assert_array_equal(as_tensor.faces.crop_boxes, as_numpy.faces.crop_boxes)
    np.testing.assert_array_equal(np.asarray(as_tensor.frames), as_numpy.frames)


# --- crop="face" from the full-resolution frame; crop="frame" exactly as before ---------------------

STRIPED_DISPLAY = (1280, 720)  # wider than the 1024 working square faces used to be cut from
STRIPED_PORTRAIT = (576, 285, 128, 150)  # left, top, width, height


def striped_frame() -> np.ndarray:
    """The portrait in a 1280 x 720 frame, every other column darker by 60: detail across that a
    squash of 1280 to 1024 columns cannot keep.  (720, 1280, 3)"""
    left, top, width, height = STRIPED_PORTRAIT
    frame = frame_with_portrait(left, top, STRIPED_DISPLAY, (width, height)).astype(np.int16)
    frame[:, ::2] -= 60
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def striped_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("striped")
    images = [striped_frame()] * 24
    return {codec: str(write_frames_video(folder / codec, images, codec)) for codec in ("h264", "vp9")}


def working_square_crops(frames: np.ndarray, crop_boxes: np.ndarray, display, size: int, work: int = 1024):
    """What the face path did before: the frame squashed to a work x work square, the crop box clamped
    to it, cut and resized to S.  (F, H, W, 3) -> (F, S, S, 3)"""
    width, height = display
    squashed = resize_frames(frames, work, work)
    scale = np.array([work / width, work / height, work / width, work / height])
    corners = np.concatenate([crop_boxes[:, :2], crop_boxes[:, :2] + crop_boxes[:, 2:]], axis=1) * scale
    return crop_resize(squashed, np.clip(np.round(corners), 0, work).astype(np.int64), size)


def use_fake_nvdec(monkeypatch) -> None:
    """PyNvVideoCodec's stand-in (FFmpeg behind the same calls), so the nvdec backend runs on a CPU."""
    from dfscan.kernels.decode import nvdec
    from tests.kernels.nvdec_fake import FakePyNvVideoCodec

    fake = FakePyNvVideoCodec()
    monkeypatch.setattr(nvdec, "load_pynvvideocodec", lambda: fake)
    monkeypatch.setattr(nvdec, "nvdec_available", lambda: True)


@pytest.mark.parametrize("decoder, codec, sampling", [("pyav", "h264", "uniform"), ("pyav", "vp9", "keyframe"),
                                                      ("dali-cpu", "vp9", "uniform"), ("dali-cpu", "vp9", "keyframe"),
                                                      ("nvdec", "h264", "uniform")])
def test_face_crops_are_cut_from_the_full_resolution_frame(striped_videos, monkeypatch, decoder, codec, sampling):
    """Every decoder hands the face stage the 1280 x 720 frame itself: the crop equals the one cut
    from PyAV's full-resolution frame with the same box, keeps the one-pixel stripes, and is not
    what the 1024 working square gave."""
    if decoder == "nvdec":
        use_fake_nvdec(monkeypatch)
    left, top, width, height = STRIPED_PORTRAIT
    detector = StillFaceDetector(pasted_face_box(left, top, width, height), STRIPED_DISPLAY[0])
    spec = ClipSpec(frames=4, size=72, sampling=sampling, decoder=decoder, crop="face", face_detect_frames=2)
    (clip,) = ClipReader(spec, gpu=decoder == "nvdec", face_detector=detector).read([striped_videos[codec]])
    assert clip.ok and (clip.decoder, clip.crop) == (decoder, "face"), clip.error
    frames = np.asarray(clip.frames)
    assert frames.shape == (4, 72, 72, 3)
    native = PyAVDecoder(72, full_res_cap=1920).decode_clip(clip.probe, clip.indices)
    assert native.shape == (4, 720, 1280, 3)  # 1280 x 720 is under the cap: decoded as it is
    rects = decoded_rects(clip.faces.crop_boxes, STRIPED_DISPLAY, STRIPED_DISPLAY)
    assert (rects[:, 2] - rects[:, 0]).tolist() == [72] * 4  # 1.3 x the 55-pixel face: about S, cut 1:1
    expected = crop_resize(native, rects, 72)
    if decoder == "pyav":
        np.testing.assert_array_equal(frames, expected)
    else:
        assert mean_abs_difference(frames, expected) < 3
    stripes = np.abs(np.diff(frames[..., 1].astype(np.int16), axis=2)).mean()  # column to column, green
    old = working_square_crops(native, clip.faces.crop_boxes, STRIPED_DISPLAY, 72)
    old_stripes = np.abs(np.diff(old[..., 1].astype(np.int16), axis=2)).mean()
    assert stripes > 40 and old_stripes < stripes / 2, (stripes, old_stripes)
    assert mean_abs_difference(frames, old) > 10


@pytest.mark.parametrize("frames, size", [(1, 32), (5, 48), (9, 96)])
def test_a_capped_portrait_video_is_cropped_at_its_capped_shape(tmp_path, frames, size):
    """A portrait video (coded 360 x 640) with the long side capped at 320: decoded at 180 x 320, the
    aspect kept, the crop box scaled by decoded/display; any F and S."""
    video = str(write_face_video(tmp_path / "portrait", 12, "h264", top=300, frame_size=(360, 640),
                                 lefts=(100, 100)))
    detector = StillFaceDetector(pasted_face_box(100, 300, 128, 150), 360)
    spec = ClipSpec(frames=frames, size=size, decoder="pyav", crop="face", face_detect_frames=2, face_work_size=320)
    (clip,) = ClipReader(spec, gpu=False, face_detector=detector).read([video])
    assert clip.ok and clip.crop == "face" and np.asarray(clip.frames).shape == (frames, size, size, 3)
    capped = PyAVDecoder(size, full_res_cap=320).decode_clip(clip.probe, clip.indices)
    assert capped.shape == (frames, 320, 180, 3)
    rects = decoded_rects(clip.faces.crop_boxes, (360, 640), (180, 320))
    np.testing.assert_array_equal(clip.frames, crop_resize(capped, rects, size))
    # The box lands on the face: the same crop of the frame as encoded, halved as the cap halves it.
    halved = resize_frames(frame_with_portrait(100, 300, (360, 640), (128, 150))[None], 320, 180)
    assert mean_abs_difference(np.asarray(clip.frames[0]), crop_resize(halved, rects[:1], size)[0]) < 6


@pytest.mark.parametrize("decoder", ["pyav", "dali-cpu"])
def test_a_face_at_the_border_is_padded_not_moved(tmp_path, mtcnn, decoder):
    """The portrait stands 40 pixels past the left edge: MTCNN finds the face, the square stays centred
    on it, reaches past the edge, and that part of the crop is black while the rest is the picture."""
    video = write_frames_video(tmp_path / "border", [frame_with_portrait(-40, 100)] * 12, "vp9")
    spec = face_spec(decoder=decoder, frames=4, face_detect_frames=2, face_margin=2.0)
    (clip,) = ClipReader(spec, gpu=False, face_detector=mtcnn).read([str(video)])
    assert clip.ok and clip.crop == "face" and clip.faces.face_frames == 2, clip.error
    truth = np.array(pasted_face_box(-40, 100, 128, 150))
    boxes, squares = clip.faces.boxes, clip.faces.crop_boxes
    assert np.hypot(*(boxes[0, :2] + boxes[0, 2:] / 2 - truth[:2] - truth[2:] / 2)) < 6
    np.testing.assert_allclose(squares[:, :2] + squares[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2, atol=1e-9)
    assert (squares[:, 2] == squares[:, 3]).all() and (squares[:, 0] < -10).all()  # square, past the edge
    frames = np.asarray(clip.frames)
    rects = decoded_rects(squares, (640, 360), (640, 360))
    for frame, (x0, _, x1, _) in zip(frames, rects.tolist()):
        black = round(-x0 * 64 / (x1 - x0))  # output columns left of the frame's edge
        assert 8 <= black < 32
        assert (frame[:, :black] == 0).all()
        assert (frame[:, black:].max(axis=(0, 2)) > 30).all()  # every column of the picture: backdrop or face


@pytest.mark.parametrize("decoder", ["pyav", "dali-cpu"])
def test_crop_frame_is_the_decoders_squash_byte_for_byte(face_video, decoder):
    """crop="frame" is untouched by the face path: each frame is the whole frame squashed to S x S by
    the decoder itself (swscale's bilinear for PyAV, DALI's antialiased linear resize), as before."""
    (clip,) = ClipReader(ClipSpec(frames=4, size=48, decoder=decoder), gpu=False).read([str(face_video)])
    assert clip.ok and clip.decoder == decoder
    wanted = clip.indices.tolist()
    if decoder == "pyav":
        import av

        with av.open(str(face_video)) as container:
            decoded = [frame.reformat(width=48, height=48, format="rgb24", interpolation="BILINEAR").to_ndarray()
                       for frame in container.decode(video=0)]
        expected = np.stack([decoded[i] for i in wanted])
    else:
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=1, num_threads=1, device_id=None)
        def squash():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            video = fn.decoders.video(encoded, device="cpu", frames=sorted(set(wanted)))
            return fn.resize(video, resize_x=48, resize_y=48, interp_type=types.INTERP_LINEAR, antialias=True)

        pipeline = squash()
        pipeline.build()
        pipeline.feed_input("encoded", [np.fromfile(face_video, dtype=np.uint8)])
        unique = np.array(pipeline.run()[0][0])
        expected = unique[[sorted(set(wanted)).index(i) for i in wanted]]
    np.testing.assert_array_equal(clip.frames, expected)
