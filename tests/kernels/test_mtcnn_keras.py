"""kernels/mtcnn_keras.py: MTCNN as Keras 3 models gives the ``mtcnn`` package's boxes and scores on
matplotlib's portrait (full size, pasted small, twice in one frame) and nothing on a plain frame; a
batch of images of different sizes gives each image its own answer; the weights are checked before
they are unpickled; and under JAX it runs without importing TensorFlow.

Tolerance against the package: boxes within 1 px, scores within 1e-3. Both round each box number to
a whole pixel from the same float32 networks, so they agree exactly here; the pixel allows a
rounding to flip where another backend's convolution order or the generic area resize (1e-5 off
TensorFlow's fused op) moves a box edge by a hair across a half pixel, and 1e-3 in the score is far
below the 0.9 confidence the track cuts at, far above float noise."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dfscan.kernels import mtcnn_keras
from dfscan.kernels.faces import MtcnnDetector
from dfscan.kernels.mtcnn_keras import AreaPyramid, WeightsUnavailable, detect_faces, scale_pyramid
from tests.face_media import PORTRAIT_FACE, frame_with_portrait, pasted_face_box, portrait

if importlib.util.find_spec("mtcnn") is None:  # found, not imported: importing it imports TensorFlow
    pytest.skip("the port reads its weights from the mtcnn package, not installed", allow_module_level=True)


def two_portraits() -> np.ndarray:
    frame = frame_with_portrait(60, 100)
    frame[100:250, 400:528] = frame_with_portrait(400, 100)[100:250, 400:528]
    return frame


def plain(width: int = 640, height: int = 360) -> np.ndarray:
    return np.full((height, width, 3), 90, dtype=np.uint8)


IMAGES = {"portrait": portrait, "pasted": lambda: frame_with_portrait(300, 100), "two": two_portraits,
          "plain": plain}


@pytest.fixture(scope="module")
def package():
    pytest.importorskip("tensorflow", reason="the mtcnn package itself runs on TensorFlow")
    from mtcnn import MTCNN

    return MTCNN(stages="face_and_landmarks_detection", device="CPU:0")


@pytest.mark.parametrize("name", list(IMAGES))
def test_the_port_gives_the_package_boxes_and_scores(package, name):
    image = IMAGES[name]()
    expected = package.detect_faces(image)
    boxes, scores = detect_faces([image])[0]
    assert len(boxes) == len(expected) == {"portrait": 1, "pasted": 1, "two": 2, "plain": 0}[name]
    np.testing.assert_allclose(boxes, [face["box"] for face in expected] if expected else np.zeros((0, 4)), atol=1)
    np.testing.assert_allclose(scores, [face["confidence"] for face in expected], atol=1e-3)


def test_the_faces_are_where_the_portrait_is():
    """Not only the package's answer, a right one: the pasted face, at the box the portrait's scale puts it."""
    (boxes, scores), = detect_faces([frame_with_portrait(300, 100)])
    np.testing.assert_allclose(boxes[0], pasted_face_box(300, 100, 128, 150), atol=4)
    (boxes, scores), = detect_faces([portrait()])
    assert boxes.tolist() == [list(PORTRAIT_FACE)] and scores[0] > 0.98
    (boxes, _), = detect_faces([two_portraits()])
    assert sorted(boxes[:, 0].tolist()) == [105.0, 445.0]  # one face per pasted portrait


def test_a_batch_of_different_sizes_gives_each_image_its_own_answer():
    images = [plain(400, 300), frame_with_portrait(300, 100), portrait(), plain(), two_portraits(),
              frame_with_portrait(20, 40, frame_size=(320, 240), portrait_size=(96, 112)), plain(8, 8)]
    batched = detect_faces(images)
    for image, (boxes, scores) in zip(images, batched):
        (alone_boxes, alone_scores), = detect_faces([image])
        np.testing.assert_array_equal(boxes, alone_boxes)
        np.testing.assert_allclose(scores, alone_scores, atol=1e-5)
    assert [len(scores) for _, scores in batched] == [0, 1, 1, 0, 2, 1, 0]


def test_the_detector_does_not_move_a_face_for_a_faceless_image_before_it():
    """The package pads a mixed batch and, when its first image has no face, shifts the next image's
    boxes by the first one's padding (here 120 px to the left). The detector must not."""
    pasted = frame_with_portrait(300, 100)
    detector = MtcnnDetector()
    after_plain = detector.detect([plain(400, 300), pasted])[1]
    alone = detector.detect([pasted])[0]
    np.testing.assert_array_equal(after_plain.boxes, alone.boxes)
    np.testing.assert_allclose(after_plain.boxes[0], pasted_face_box(300, 100, 128, 150), atol=4)
    assert (detector.name, detector.version) == ("mtcnn", "1.0.0")


def test_new_frame_sizes_do_not_trace_the_pyramid_again():
    """An archive of many resolutions must not pay a trace (about 0.5 s) for each new frame size."""
    import keras

    if keras.config.backend() != "tensorflow":
        pytest.skip("the traced pyramid pass is the TensorFlow backend's")
    traces = mtcnn_keras._passes()[0].tracing_count
    detect_faces([plain(320, 180)] * 3)
    detect_faces([plain(300, 200)])  # a new size and batch: the trace generalises (once per dimension)
    before = traces()
    for width, height in [(256, 256), (180, 320), (330, 190), (200, 150)]:
        detect_faces([plain(width, height)] * 3)
    assert traces() == before


def test_a_warmed_up_detector_traces_nothing_in_its_first_batch():
    """A scan worker warms its detector up on black frames, which give R- and O-net nothing to see: the
    warm-up must trace them anyway, and a remainder batch of one frame, so that the first real batch
    of faces traces nothing (three traces there cost a 24-video bench run a third of its speed).
    In a fresh process: what earlier tests traced would hide a missing warm-up. Traced passes are the
    TensorFlow backend's (JAX compiles per shape instead): elsewhere the test is skipped, never passed."""
    keras = pytest.importorskip("keras")
    if keras.config.backend() != "tensorflow":
        pytest.skip("traced MTCNN passes are the TensorFlow backend's")
    script = textwrap.dedent("""
        import keras
        from dfscan.kernels.faces import MtcnnDetector
        from dfscan.kernels.mtcnn_keras import _passes
        from tests.face_media import frame_with_portrait
        assert keras.config.backend() == "tensorflow", keras.config.backend()
        detector = MtcnnDetector()
        detector.warm_up(images=8, detect_size=320)
        pyramid, patches, _ = _passes()
        before = (pyramid.tracing_count(), patches.experimental_get_tracing_count())
        faces = [frame_with_portrait(left, 20, (320, 180), (110, 130)) for left in (30, 90, 150)]
        found = detector.detect(faces * 2 + faces[:1])
        assert all(len(d.scores) for d in found), found
        after = (pyramid.tracing_count(), patches.experimental_get_tracing_count())
        assert after == before, (before, after)
        print("ok")
        """)
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(repo)}, cwd=repo, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_generic_area_pyramid_matches_the_fused_area_resize():
    """The running-sum pyramid other backends use against Keras's TensorFlow op (the package's resize)."""
    keras = pytest.importorskip("keras")
    if keras.config.backend() != "tensorflow":
        pytest.skip("the fused area resize is the TensorFlow backend's")
    image = (portrait()[None].astype(np.float32) - 127.5) / 128
    fused, generic = AreaPyramid(image, native=True), AreaPyramid(image, native=False)
    for scale in scale_pyramid(512, 600):
        size = (int(600 * scale), int(512 * scale))
        np.testing.assert_allclose(np.asarray(generic.level(*size)), np.asarray(fused.level(*size)), atol=1e-4)


def test_weights_other_than_the_wheels_are_refused(tmp_path, monkeypatch):
    for network in ("pnet", "rnet", "onet"):
        (tmp_path / f"{network}.lz4").write_bytes((mtcnn_keras.weights_dir() / f"{network}.lz4").read_bytes())
    with open(tmp_path / "rnet.lz4", "ab") as weights:
        weights.write(b"\0")
    (tmp_path / "onet.lz4").unlink()
    monkeypatch.setattr(mtcnn_keras, "weights_dir", lambda: tmp_path)
    assert len(mtcnn_keras.load_weights("pnet")) == 13
    with pytest.raises(WeightsUnavailable, match=r"rnet.lz4 is not the mtcnn 1.0.0 wheel's rnet weights"):
        mtcnn_keras.load_weights("rnet")
    with pytest.raises(WeightsUnavailable, match=r"cannot read .*onet.lz4"):
        mtcnn_keras.load_weights("onet")


def test_it_detects_under_jax_without_importing_tensorflow(tmp_path):
    pytest.importorskip("jax", reason="JAX is not installed here (the device and the dry-run venv have it)")
    script = textwrap.dedent("""
        import sys
        from dfscan.kernels.mtcnn_keras import detect_faces
        from tests.face_media import frame_with_portrait, pasted_face_box
        import keras
        (boxes, scores), = detect_faces([frame_with_portrait(300, 100)])
        expected = pasted_face_box(300, 100, 128, 150)
        assert keras.config.backend() == "jax", keras.config.backend()
        assert len(boxes) == 1 and max(abs(a - b) for a, b in zip(boxes[0], expected)) <= 4, (boxes, expected)
        assert scores[0] > 0.9, scores
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print("ok")
        """)
    repo = Path(__file__).resolve().parents[2]
    environment = os.environ | {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(repo)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          cwd=repo, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
