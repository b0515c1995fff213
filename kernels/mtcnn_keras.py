"""MTCNN (Zhang et al. 2016) as backend-neutral Keras 3 models, with the ``mtcnn`` 1.0.0 package's own
weights and its pipeline, so it gives that package's boxes on TensorFlow, JAX or any Keras backend.

The package (MIT, Iván de Paz Centeno) imports TensorFlow at import time, and the lent GPU machine
has none. This module imports neither: the three networks are ``keras.layers``, the image pyramid
is ``keras.ops`` (on the device where the backend has one), and the box maths and NMS are numpy,
each a port of the package's own function (its thresholds, scale factor, its one-pass NMS, its
rounding). Only the weights come from the installed package, read from its wheel's files without
importing it: ``mtcnn/assets/weights/{pnet,rnet,onet}.lz4`` are joblib pickles (lz4 frames), so
each file's sha256 is checked against the 1.0.0 wheel's before it is unpickled.

One difference, on purpose: the package pads a batch of images of different sizes to the largest
and runs one pyramid over the padded stack, so an image's boxes depend on the other images of its
batch (and a batch whose first image has no face moves the next image's boxes by the first's
padding: ``fix_bboxes_offsets`` pairs pads with the image ids that have faces). Here the images of
one size are batched together and each size runs alone, so an image gets the boxes the package
gives it alone, whatever its batch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np

MIN_FACE_SIZE = 20  # pixels: the package's default smallest face
CELL_SIZE = 12  # P-net's window, pixels
CELL_STRIDE = 2  # P-net's window step, pixels
SCALE_FACTOR = 0.709  # between the pyramid's levels
PNET_THRESHOLD, RNET_THRESHOLD, ONET_THRESHOLD = 0.6, 0.7, 0.8
PNET_NMS_PER_SCALE, PNET_NMS, RNET_NMS, ONET_NMS = 0.5, 0.7, 0.7, 0.7
PATCH_BUCKET = 64  # R- and O-net batches are padded to this times a power of two: a compiling backend sees few shapes

WEIGHTS_SHA256 = {  # the mtcnn 1.0.0 wheel's files: anything else is not unpickled
    "pnet": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
    "rnet": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
    "onet": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
}


class WeightsUnavailable(RuntimeError):
    """The mtcnn package's weight files are missing or are not the 1.0.0 wheel's."""


def weights_dir() -> Path:
    """The installed package's weights folder, found without importing ``mtcnn`` (which imports TF)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable("the mtcnn package (1.0.0, which holds MTCNN's weights) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def load_weights(network: str) -> list[np.ndarray]:
    """One network's arrays, in the package's layer order."""
    path = weights_dir() / f"{network}.lz4"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsUnavailable(f"cannot read {path}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != WEIGHTS_SHA256[network]:
        raise WeightsUnavailable(f"{path} is not the mtcnn 1.0.0 wheel's {network} weights (sha256 differs)")
    import joblib  # imports no TensorFlow; lz4 decompresses its frames

    return [np.asarray(array, dtype=np.float32) for array in joblib.load(io.BytesIO(data))]


def _conv_block(x, layers, filters: int, kernel: int, name: str):
    x = layers.Conv2D(filters, kernel, padding="valid", name=f"{name}_conv")(x)
    return layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x)


def build_pnet():
    """Proposals over a whole image: (B, H, W, 3) -> box offsets (B, h, w, 4), face odds (B, h, w, 2)."""
    import keras
    from keras import layers

    image = keras.Input((None, None, 3))
    x = _conv_block(image, layers, 10, 3, "block1")
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = _conv_block(x, layers, 16, 3, "block2")
    x = _conv_block(x, layers, 32, 3, "block3")
    offsets = layers.Conv2D(4, 1, name="offsets")(x)
    odds = layers.Conv2D(2, 1, activation="softmax", name="odds")(x)
    return keras.Model(image, [offsets, odds], name="pnet")


def build_rnet():
    """Refinement of 24x24 patches: (N, 24, 24, 3) -> box offsets (N, 4), face odds (N, 2)."""
    import keras
    from keras import layers

    patch = keras.Input((24, 24, 3))
    x = _conv_block(patch, layers, 28, 3, "block1")
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = _conv_block(x, layers, 48, 3, "block2")
    x = layers.MaxPooling2D(3, 2, padding="valid")(x)
    x = _conv_block(x, layers, 64, 2, "block3")
    x = layers.Flatten()(layers.Permute((2, 1, 3))(x))  # the weights were trained on Caffe's (x, y) order
    x = layers.PReLU(name="dense_prelu")(layers.Dense(128, name="dense")(x))
    return keras.Model(patch, [layers.Dense(4, name="offsets")(x),
                               layers.Dense(2, activation="softmax", name="odds")(x)], name="rnet")


def build_onet():
    """The last word on 48x48 patches: (N, 48, 48, 3) -> box offsets (N, 4), landmarks (N, 10), odds (N, 2)."""
    import keras
    from keras import layers

    patch = keras.Input((48, 48, 3))
    x = _conv_block(patch, layers, 32, 3, "block1")
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = _conv_block(x, layers, 64, 3, "block2")
    x = layers.MaxPooling2D(3, 2, padding="valid")(x)
    x = _conv_block(x, layers, 64, 3, "block3")
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = _conv_block(x, layers, 128, 2, "block4")
    x = layers.Flatten()(layers.Permute((2, 1, 3))(x))
    x = layers.PReLU(name="dense_prelu")(layers.Dense(256, name="dense")(x))
    return keras.Model(patch, [layers.Dense(4, name="offsets")(x), layers.Dense(10, name="landmarks")(x),
                               layers.Dense(2, activation="softmax", name="odds")(x)], name="onet")


@functools.lru_cache(maxsize=1)
def networks():
    """P-, R- and O-net with the package's weights, built once per process."""
    built = []
    for network, build in (("pnet", build_pnet), ("rnet", build_rnet), ("onet", build_onet)):
        model = build()
        model.set_weights(load_weights(network))  # same layer order as the package's subclassed models
        built.append(model)
    return tuple(built)


def scale_pyramid(width: int, height: int) -> np.ndarray:
    """The package's pyramid (``build_scale_pyramid``): the image scaled so a 20 px face fills P-net's
    12 px window, then by 0.709 a level.  (levels,)"""
    levels = round(-((np.log(min(width, height) / CELL_SIZE) / np.log(SCALE_FACTOR)) + 1))
    return CELL_SIZE / MIN_FACE_SIZE * SCALE_FACTOR ** np.arange(levels)


def _area_spans(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, float]:
    """TensorFlow's area resize along one axis: output pixel o averages the input over [o s, (o + 1) s),
    s = size_in / size_out in float32 as TF takes it. The span's ends and that step.  (out,) x2, s"""
    step = np.float32(size_in) / np.float32(size_out)
    starts = (np.arange(size_out) * step).astype(np.float64)
    return starts, np.minimum(starts + step, size_in), float(step)


def _along(axis: int, values: np.ndarray, rank: int = 4):
    from keras import ops

    shape = [1] * rank
    shape[axis] = len(values)
    return ops.reshape(ops.convert_to_tensor(values.astype(np.float32)), shape)


class AreaPyramid:
    """One image stack at the sizes of its pyramid, each as ``tf.image.resize(method="area")`` gives it,
    in keras.ops. Each axis in turn from a running sum: the integral of the pixels up to a fractional
    position t is the whole pixels before it plus the fraction of the one it falls in, so an output
    pixel costs four reads however many input pixels it covers, and the running sum down the rows is
    taken once for every level.  (B, H, W, C) float"""

    def __init__(self, images, native: bool | None = None):
        import keras

        self.images = images
        # Keras's TensorFlow backend alone has the area resize, as one fused op about ten times faster
        # on a CPU than the running sums in generic ops: there it is used (the same numbers, to 1e-5).
        self.native = keras.config.backend() == "tensorflow" if native is None else native
        self.rows_before = None if self.native else self._running(images, axis=1)

    @staticmethod
    def _running(images, axis: int):
        """(.., n + 1, ..): the sum of the pixels before each index along ``axis``."""
        from keras import ops

        padding = [(0, 0)] * 4
        padding[axis] = (1, 0)
        return ops.pad(ops.cumsum(images, axis=axis), padding)

    @staticmethod
    def _pass(images, before, axis: int, size: int):
        from keras import ops

        size_in = images.shape[axis]
        starts, ends, step = _area_spans(size_in, size)

        def integral(t: np.ndarray):
            whole = np.floor(t).astype(np.int64)
            pixel = ops.take(images, ops.convert_to_tensor(np.minimum(whole, size_in - 1)), axis=axis)
            return ops.take(before, ops.convert_to_tensor(whole), axis=axis) + pixel * _along(axis, t - whole)

        return (integral(ends) - integral(starts)) / step

    def level(self, height: int, width: int):
        """(B, height, width, C)"""
        if self.native:
            from keras import ops

            return ops.image.resize(self.images, (height, width), interpolation="area")
        rows = self._pass(self.images, self.rows_before, 1, height)
        return self._pass(rows, self._running(rows, axis=2), 2, width)


def _sort_by_score(boxes: np.ndarray, column: int = 5) -> np.ndarray:
    return boxes[np.argsort(boxes[:, column])[::-1]]  # the package's order, ties included


def _overlaps(boxes: np.ndarray, method: str) -> np.ndarray:
    """Pairwise overlap of (n, 4) x1, y1, x2, y2 boxes: over the union, or over the smaller.  (n, n)"""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lower = np.maximum(boxes[None, :, :2], boxes[:, None, :2])  # (n, n, 2): each pair's overlap, x1 y1
    upper = np.minimum(boxes[None, :, 2:], boxes[:, None, 2:])
    width, height = np.moveaxis(np.maximum(0, upper - lower), -1, 0)  # (n, n) each
    inter = width * height
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "union":
            return inter / (area[:, None] + area[None, :] - inter)
        return inter / np.minimum(area[:, None], area[None, :])


def nms(boxes: np.ndarray, threshold: float, method: str = "union", sort: bool = True) -> np.ndarray:
    """The package's NMS (``smart_nms_from_bboxes``) on rows [image, x1, y1, x2, y2, score, ...]: per
    image, a box is dropped if any box before it overlaps it more than ``threshold``, even one itself
    dropped (one pass, not the greedy kind: ported as is, so the boxes are the package's)."""
    if sort:
        boxes = _sort_by_score(boxes)
    kept = []
    for image in np.unique(boxes[:, 0]):
        mine = boxes[boxes[:, 0] == image]
        overlapped = np.triu(_overlaps(mine[:, 1:5], method) > threshold, k=1).any(axis=0)
        kept.append(mine[~overlapped])
    return np.concatenate(kept) if kept else boxes[:0]


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square of its longer side about its centre."""
    boxes = boxes.copy()
    width, height = boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2]
    side = np.maximum(width, height)
    boxes[:, 1] += width * 0.5 - side * 0.5
    boxes[:, 2] += height * 0.5 - side * 0.5
    boxes[:, 3:5] = boxes[:, 1:3] + side[:, None]
    return boxes


def _refine(boxes: np.ndarray, offsets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """R- and O-net's answer applied: their score, and their offsets in units of the box's inclusive size."""
    boxes = boxes.copy()
    boxes[:, 5] = scores
    width, height = boxes[:, 3] - boxes[:, 1] + 1, boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([width, height, width, height], axis=-1)
    return boxes


def _proposals(offsets: np.ndarray, odds: np.ndarray, scale: float) -> np.ndarray:
    """P-net's windows scoring above its threshold, as rows [image, x1, y1, x2, y2, score] in the
    unscaled image (``generate_bounding_box`` and ``upscale_bboxes``), best first."""
    score = odds[..., 1]
    image, row, column = np.where(score > PNET_THRESHOLD)
    dx1, dy1, dx2, dy2 = offsets[image, row, column].T
    left, top = column * CELL_STRIDE + 1, row * CELL_STRIDE + 1
    right, bottom = column * CELL_STRIDE + CELL_SIZE, row * CELL_STRIDE + CELL_SIZE
    width, height = right - left, bottom - top
    boxes = np.stack([image, left + dx1 * width, top + dy1 * height, right + dx2 * width, bottom + dy2 * height,
                      score[image, row, column]], axis=0).T.astype(np.float64)
    boxes = _sort_by_score(boxes)
    boxes[:, 1:5] /= scale
    return boxes


def crop_and_resize(images: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``tf.image.crop_and_resize`` as the package calls it: boxes [image, x1, y1, x2, y2] in pixels,
    divided by the image's size (not size - 1), bilinear, zeros outside.  (B, H, W, C), (n, 5) -> (n, size, size, C)"""
    _, height, width, _ = images.shape
    y1, x1 = (boxes[:, 2] / height).astype(np.float32), (boxes[:, 1] / width).astype(np.float32)
    y2, x2 = (boxes[:, 4] / height).astype(np.float32), (boxes[:, 3] / width).astype(np.float32)
    steps = np.arange(size, dtype=np.float32)
    ys = y1[:, None] * (height - 1) + steps[None, :] * ((y2 - y1) * (height - 1) / (size - 1))[:, None]  # (n, size)
    xs = x1[:, None] * (width - 1) + steps[None, :] * ((x2 - x1) * (width - 1) / (size - 1))[:, None]
    top, left = np.floor(ys), np.floor(xs)
    dy, dx = (ys - top)[:, :, None, None], (xs - left)[:, None, :, None]
    top_i, left_i = np.clip(top, 0, height - 1).astype(np.int64), np.clip(left, 0, width - 1).astype(np.int64)
    bottom_i = np.clip(np.ceil(ys), 0, height - 1).astype(np.int64)
    right_i = np.clip(np.ceil(xs), 0, width - 1).astype(np.int64)
    # Gathered as rows of the flattened stack: one np.take is several times faster than indexing with
    # three broadcast index arrays.
    flat = images.reshape(-1, images.shape[-1])  # (B * H * W, C)
    row_starts = (boxes[:, 0].astype(np.int64)[:, None] * height)  # (n, 1)

    def pixels(rows, columns):
        at = ((row_starts + rows) * width)[:, :, None] + columns[:, None, :]  # (n, size, size)
        return np.take(flat, at, axis=0)  # (n, size, size, C)

    upper = pixels(top_i, left_i) + (pixels(top_i, right_i) - pixels(top_i, left_i)) * dx
    lower = pixels(bottom_i, left_i) + (pixels(bottom_i, right_i) - pixels(bottom_i, left_i)) * dx
    patches = upper + (lower - upper) * dy
    inside = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[:, None, :]
    return np.where(inside[..., None], patches, 0.0).astype(np.float32)


def _pyramid_pass(variables, images, sizes: tuple[tuple[int, int], ...]):
    """P-net over each level of one image stack: per level (offsets, odds)."""
    pnet = networks()[0]
    pyramid = AreaPyramid(images)
    return [pnet.stateless_call(*variables, pyramid.level(height, width), training=False)[0]
            for height, width in sizes]


def _patch_pass(variables, patches, network: int):
    return networks()[network].stateless_call(*variables, patches, training=False)[0]


@functools.lru_cache(maxsize=1)
def _passes():
    """The two passes and each network's weights. On JAX each pass is compiled whole, once per input
    shape (one per frame size and batch: op by op it compiles every op for every pyramid level, minutes
    on a CPU). On TensorFlow P-net is traced per pyramid level and the patch pass once, each trace
    generalised to any size (``tracing_count`` on the pyramid pass says how many traces were made)."""
    import keras

    variables = [([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])
                 for model in networks()]
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        # Eagerly, Keras's per-layer dispatch cost twice the convolutions themselves (40 ms a 320-px
        # frame on 2 cores); traced, a graph call per pyramid level, 5 ms. Traced per level with
        # reduce_retracing, the second shape generalises the trace to any size, so an archive of many
        # resolutions does not trace again for each (about 0.5 s a trace).
        pnet = networks()[0]

        @tf.function(reduce_retracing=True)
        def level_pass(images, size):  # size: (2,) int32, a tensor so it never retraces
            level = tf.image.resize(images, size, method="area")  # AreaPyramid's TensorFlow op
            return pnet(level, training=False)  # the weights captured, not passed per call

        def pyramid_pass(weights, images, sizes):
            return [level_pass(images, tf.constant(size, dtype=tf.int32)) for size in sizes]

        pyramid_pass.tracing_count = level_pass.experimental_get_tracing_count

        return pyramid_pass, tf.function(_patch_pass, reduce_retracing=True), variables
    if keras.config.backend() != "jax":
        return _pyramid_pass, _patch_pass, variables
    import jax

    return (jax.jit(_pyramid_pass, static_argnums=2), jax.jit(_patch_pass, static_argnums=2), variables)


def _run_patches(network: int, patches: np.ndarray) -> list[np.ndarray]:
    """R-net (1) or O-net (2) on (n, s, s, 3), padded to PATCH_BUCKET times a power of two rows."""
    from keras import ops

    _, patch_pass, variables = _passes()
    count = len(patches)
    rows = PATCH_BUCKET * 2 ** max(0, math.ceil(math.log2(max(count, 1) / PATCH_BUCKET)))
    padded = np.zeros((rows, *patches.shape[1:]), dtype=np.float32)
    padded[:count] = patches
    return [ops.convert_to_numpy(output)[:count] for output in patch_pass(variables[network], padded, network)]


def trace_patch_passes() -> None:
    """Run R- and O-net on black patches at two batch sizes, so that a worker's first real batch traces
    nothing: black frames at warm-up give P-net no proposal, and so never reach them (on TensorFlow the
    second size generalises the trace to any count; on JAX the two commonest counts are compiled)."""
    for network, side in ((1, 24), (2, 48)):
        for rows in (PATCH_BUCKET, 2 * PATCH_BUCKET):
            _run_patches(network, np.zeros((rows, side, side, 3), dtype=np.float32))


def _detect_same_size(images: np.ndarray) -> list[np.ndarray]:
    """The three stages on (B, H, W, 3) uint8 images of one size; per image its faces as rows
    [x1, y1, x2, y2, score] in that image's pixels, clamped to it, best first."""
    from keras import ops

    pyramid_pass, _, variables = _passes()
    count, height, width, _ = images.shape
    normalized = (images.astype(np.float32) - 127.5) / 128  # (B, H, W, 3) in [-1, 1], the package's scaling
    scales = scale_pyramid(width, height)
    sizes = tuple((int(height * scale), int(width * scale)) for scale in scales)
    levels = pyramid_pass(variables[0], ops.convert_to_tensor(normalized), sizes) if sizes else []
    per_scale = []
    for scale, (offsets, odds) in zip(scales, levels):
        proposals = _proposals(ops.convert_to_numpy(offsets), ops.convert_to_numpy(odds), scale)
        per_scale.append(nms(proposals, PNET_NMS_PER_SCALE, sort=False))
    boxes = np.concatenate(per_scale) if per_scale else np.zeros((0, 6))
    for network, size, threshold, overlap, method in ((1, 24, RNET_THRESHOLD, RNET_NMS, "union"),
                                                      (2, 48, ONET_THRESHOLD, ONET_NMS, "min")):
        boxes = _square(nms(boxes, PNET_NMS)) if network == 1 else _square(boxes)
        if len(boxes) == 0:
            break
        outputs = _run_patches(network, crop_and_resize(normalized, boxes, size))
        boxes = _refine(boxes, outputs[0], outputs[-1][:, 1])
        boxes = nms(boxes[boxes[:, 5] > threshold], overlap, method)
    limits = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float64)
    found = [boxes[boxes[:, 0] == i][:, 1:6] for i in range(count)]
    for faces in found:
        faces[:, :4] = np.minimum(np.maximum(faces[:, :4], 0), limits)
    return found


def detect_faces(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Faces in each (H, W, 3) uint8 RGB image, as the package reports them for that image alone:
    boxes (n, 4) float (x, y, w, h), each number rounded to a whole pixel as the package rounds it,
    and scores (n,), best first. Images of one size run as one batch."""
    by_size: dict[tuple[int, int], list[int]] = {}
    for position, image in enumerate(images):
        by_size.setdefault(tuple(image.shape[:2]), []).append(position)
    answers: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 4)), np.zeros(0))] * len(images)
    for (height, width), positions in by_size.items():
        if min(height, width) < CELL_SIZE:
            continue  # smaller than P-net's window: no face, and no pyramid level
        # Padded with black images to a power of two, so a traced or compiled backend meets few batch
        # shapes (a trace costs about 0.5 s on a CPU, a batch of 16 frames 84 ms once traced). Each
        # image's faces are its own: the networks treat images apart and NMS runs per image.
        bucket = 2 ** math.ceil(math.log2(len(positions)))
        padded = np.zeros((bucket, height, width, 3), dtype=np.uint8)  # (bucket, H, W, 3), copied into once
        for row, position in enumerate(positions):
            padded[row] = images[position]
        found = _detect_same_size(padded)[:len(positions)]
        for position, faces in zip(positions, found):
            corners = faces[:, :4]
            boxes = np.stack([corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0],
                              corners[:, 3] - corners[:, 1]], axis=1).round()
            answers[position] = (boxes.astype(np.float64), faces[:, 4].astype(np.float64))
    return answers
