"""The model registry: the seed's two architectures, built from Keras 3 built-in layers only.

Every model takes ``uint8`` clips of shape (B, F, S, S, 3) and normalises them inside the graph, so
the scanner feeds decoded frames as they are and a ``.keras`` file loads with ``safe_mode=True``
and no custom objects. Nothing here calls a backend directly, so the same builders run on Keras's
TensorFlow and JAX backends. The output is a softmax over ``CLASS_NAMES`` = ("real", "fake").

Time is modelled across the F sampled frames: each frame becomes one feature vector and the LSTMs
run over the F frames. The seed's text also describes reshaping ResNet50's 7x7x2048 map of a frame
into a 49-step sequence; we do not do that (those 49 steps are positions in one image, not time).

LSTMs are built with ``use_cudnn=False``: the cuDNN kernel does not compile under XLA, and the
scanner's predict step is XLA-compiled with fixed batch shapes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

CLASS_NAMES: tuple[str, ...] = ("real", "fake")  # the card records them; readers find p(fake) from them

# Keras's cache file for the notop ImageNet weights of ResNet50 (what `weights="imagenet"` fetches).
RESNET50_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                        + RESNET50_WEIGHTS_FILE)
RESNET50_WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # the hash Keras checks after downloading

# ResNet50's caffe-style preprocessing: RGB -> BGR, then the ImageNet means subtracted.
_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str = "cnn-lstm"
    frames: int = 20
    size: int | None = None  # None: the architecture's default (see DEFAULT_SIZES)
    # Multiplies filter and unit counts of cnn-lstm (1.0 is the seed's size; tests use ~0.25).
    width: float = 1.0
    backbone_weights: str = "imagenet"  # resnet50-lstm only: "imagenet" | "none" | PATH to weights
    trainable_backbone_layers: int = 50  # resnet50-lstm: the seed trains the last 50 layers
    dropout: float = 0.5

    def resolved_size(self) -> int:
        return int(self.size) if self.size else DEFAULT_SIZES[self.arch]


DEFAULT_SIZES: dict[str, int] = {"cnn-lstm": 64, "resnet50-lstm": 224, "residual-cnn": 96}

# What the model does to its uint8 input before the first learned layer (recorded in the model card).
INPUT_NORMALISATION: dict[str, str] = {
    "cnn-lstm": "uint8 RGB -> float, x / 255 (Rescaling layer inside the model)",
    "resnet50-lstm": "uint8 RGB -> float, RGB->BGR and ImageNet mean subtracted (caffe mode, a frozen "
                     "Dense layer inside the model)",
    "residual-cnn": "uint8 RGB -> float, x / 255, then a frozen 3x3 high-pass per channel (the pixel minus the "
                    "mean of its 8 neighbours), x 20 (inside the model)",
}

_BUILDERS: dict[str, Callable[[ModelConfig], object]] = {}


def register(name: str):
    def wrap(builder):
        _BUILDERS[name] = builder
        return builder
    return wrap


def architectures() -> tuple[str, ...]:
    return tuple(_BUILDERS)


def build_model(config: ModelConfig):
    """Build (not compile) the model ``config.arch``: uint8 (B, F, S, S, 3) -> (B, 2) probabilities."""
    if config.arch not in _BUILDERS:
        raise ValueError(f"unknown architecture {config.arch!r}; expected one of {', '.join(_BUILDERS)}")
    if config.frames < 1:
        raise ValueError(f"frames must be positive, got {config.frames}")
    return _BUILDERS[config.arch](config)


def _scaled(n: int, width: float) -> int:
    return max(2, round(n * width))


def _clip_input(config: ModelConfig):
    import keras

    size = config.resolved_size()
    return keras.Input(shape=(config.frames, size, size, 3), dtype="uint8", name="frames")


def _classifier_head(x, units: int, dropout: float):
    """Dense ReLU -> softmax over [real, fake]. The softmax runs in float32 even under mixed
    precision, so probabilities sum to 1 and log-loss stays finite."""
    from keras import layers

    x = layers.Dense(units, activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dense_dropout")(x)
    return layers.Dense(len(CLASS_NAMES), activation="softmax", dtype="float32", name="probs")(x)


@register("cnn-lstm")
def build_cnn_lstm(config: ModelConfig):
    """The seed's CNN-LSTM: per-frame conv blocks (5x5 + ReLU, batch norm after each convolution,
    dilated convolutions, max pooling), two bidirectional LSTMs, Dense 512, softmax."""
    import keras
    from keras import layers

    w = config.width
    inputs = _clip_input(config)  # (B, F, S, S, 3) uint8
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)  # (B, F, S, S, 3) float in [0, 1]

    def block(x, filters: int, dilation: int, name: str):
        x = layers.TimeDistributed(layers.Conv2D(filters, 5, padding="same", dilation_rate=dilation,
                                                 activation="relu"), name=f"{name}_conv")(x)
        # Batch norm over (B, F, S, S) per channel: frames of a clip share statistics. Momentum 0.9
        # (not 0.99): short runs must still end with usable moving statistics for inference.
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.TimeDistributed(layers.MaxPooling2D(2), name=f"{name}_pool")(x)

    x = block(x, _scaled(32, w), 1, "block1")  # (B, F, S/2, S/2, c1)
    x = block(x, _scaled(64, w), 2, "block2")  # (B, F, S/4, S/4, c2): dilation widens the view of seams
    x = block(x, _scaled(128, w), 2, "block3")  # (B, F, S/8, S/8, c3)
    # Flattened, not pooled: the LSTMs compare the *same places* across frames (flicker of the face
    # region against its surroundings), which a global pooling would average away.
    x = layers.TimeDistributed(layers.Flatten(), name="frame_features")(x)  # (B, F, S/8 * S/8 * c3)
    x = layers.Bidirectional(layers.LSTM(_scaled(128, w), return_sequences=True, use_cudnn=False),
                             name="bilstm1")(x)  # (B, F, 2 * u1)
    x = layers.Bidirectional(layers.LSTM(_scaled(64, w), use_cudnn=False), name="bilstm2")(x)  # (B, 2*u2)
    outputs = _classifier_head(x, _scaled(512, w), config.dropout)  # (B, 2)
    return keras.Model(inputs, outputs, name="cnn_lstm")


def keras_models_dir() -> Path:
    """Where Keras caches downloaded weights: ``$KERAS_HOME/models`` (default ``~/.keras/models``),
    or ``/tmp/.keras/models`` when that home is not writable (Keras's own fallback)."""
    home = Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser())
    probe = home if home.exists() else home.parent
    if not os.access(probe, os.W_OK):
        home = Path("/tmp/.keras")
    return home / "models"


def resolve_backbone_weights(spec: str, allow_download: bool = True) -> str | None:
    """``none`` -> None (random init), ``imagenet`` -> the local cache file, PATH -> PATH.

    With ``imagenet`` and no cached file, Keras's download is tried; if that fails (no network),
    the error names the file to place so an offline machine can be set up by hand.
    """
    if spec in ("none", "", None):
        return None
    if spec != "imagenet":
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights file not found: {path}")
        return str(path)
    cached = keras_models_dir() / RESNET50_WEIGHTS_FILE
    if cached.is_file():
        return str(cached)
    message = (f"ImageNet weights for ResNet50 are not in Keras's cache. Place "
               f"{RESNET50_WEIGHTS_FILE} (from {RESNET50_WEIGHTS_URL}) at {cached}, or pass "
               f"--backbone-weights none or --backbone-weights PATH")
    if not allow_download:
        raise RuntimeError(message)
    import keras

    try:
        return keras.utils.get_file(RESNET50_WEIGHTS_FILE, RESNET50_WEIGHTS_URL, cache_subdir="models",
                                    file_hash=RESNET50_WEIGHTS_MD5)
    except Exception as exc:  # noqa: BLE001 - any download failure gets the same actionable message
        raise RuntimeError(f"{message} (download failed: {type(exc).__name__}: {exc})") from None


@register("resnet50-lstm")
def build_resnet50_lstm(config: ModelConfig):
    """The seed's ResNet50-LSTM: a ResNet50 per frame (last 50 layers trainable), the pooled features
    of the F frames through a bidirectional LSTM(128), batch norm, Dense 1024 and 512 with ReLU and
    Dropout 0.5, softmax."""
    import keras
    import numpy as np
    from keras import layers

    size = config.resolved_size()
    weights = resolve_backbone_weights(config.backbone_weights)
    backbone = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(size, size, 3),
                                           pooling="avg")
    # The seed freezes the early layers and fine-tunes the last ones (BatchNorm layers that are
    # frozen run in inference mode in Keras 3, keeping their ImageNet statistics).
    trainable_from = max(0, len(backbone.layers) - config.trainable_backbone_layers)
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= trainable_from

    inputs = _clip_input(config)  # (B, F, S, S, 3) uint8
    # caffe preprocessing as a frozen 3x3 linear map + bias on the channel axis: RGB -> BGR, minus the
    # means. A built-in layer with fixed weights keeps the file loadable in safe mode.
    to_bgr = layers.Dense(3, trainable=False, name="caffe_preprocess")
    x = layers.Rescaling(1.0, name="to_float")(inputs)  # (B, F, S, S, 3) float, 0..255
    x = to_bgr(x)
    permutation = np.eye(3, dtype="float32")[::-1]  # column j of the output takes input channel 2 - j
    to_bgr.set_weights([permutation, -np.asarray(_IMAGENET_BGR_MEAN, dtype="float32")])
    x = layers.TimeDistributed(backbone, name="resnet50")(x)  # (B, F, 2048)
    x = layers.Bidirectional(layers.LSTM(128, use_cudnn=False), name="bilstm")(x)  # (B, 256)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Dense(1024, activation="relu", name="dense1024")(x)
    x = layers.Dropout(config.dropout, name="dropout1024")(x)
    outputs = _classifier_head(x, 512, config.dropout)  # (B, 2)
    return keras.Model(inputs, outputs, name="resnet50_lstm")


# Architectures that score any frame size with the same weights, so training may cut random crops:
# the smallest side each takes (residual-cnn: 34 = 2 + 2 * (2 + 2 * (2 + 2 * 2 + 1)): its unpadded
# convolutions and pools leave 1 pixel of 34).
FULLY_CONVOLUTIONAL: dict[str, int] = {"residual-cnn": 34}


# The residual model's frozen high-pass: each pixel minus the mean of its 8 neighbours, per channel.
# What is left is the fine texture a face swap or reenactment re-renders (blur, blending, resampling),
# with the face's identity, pose and lighting mostly gone; without it a small CNN learns the faces.
_HIGH_PASS_GAIN = 20.0  # residuals of 8-bit video are a few grey levels; this brings them to about unit scale


def _high_pass_kernel():
    import numpy as np

    kernel = np.full((3, 3, 3, 1), -1.0 / 8.0, dtype="float32")  # (kh, kw, channels, multiplier)
    kernel[1, 1] = 1.0
    return kernel


def _residual_frame_net(config: ModelConfig):
    """One frame of any size -> p(real), p(fake): fully convolutional, so it is trained on small random
    crops of the face (``AugmentConfig.spatial_crop``) and scans the whole face square."""
    import keras
    from keras import layers

    frame = keras.Input(shape=(None, None, 3), dtype="uint8", name="frame")  # (B, H, W, 3) uint8
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(frame)
    high_pass = layers.DepthwiseConv2D(3, use_bias=False, trainable=False, name="high_pass")
    x = high_pass(x)  # (B, H-2, W-2, 3): the residual
    high_pass.set_weights([_high_pass_kernel()])
    x = layers.Rescaling(_HIGH_PASS_GAIN, name="residual_gain")(x)
    filters = _scaled(16, config.width)
    stages = 3
    for stage in range(1, stages + 1):  # receptive field 3 + 2 * 2 + 4 * 4 + ... = 26 pixels at the end
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, use_bias=False, name=f"stage{stage}_conv{conv}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"stage{stage}_bn{conv}")(x)
            x = layers.ReLU(name=f"stage{stage}_relu{conv}")(x)
        if stage < stages:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
            filters *= 2
    # (B, h, w, c3): local evidence at each place of the face, averaged over the face
    x = layers.GlobalAveragePooling2D(name="face_mean")(x)  # (B, c3)
    x = layers.Dropout(config.dropout * 0.6, name="dropout")(x)  # 0.3 at the default 0.5
    probs = layers.Dense(len(CLASS_NAMES), activation="softmax", dtype="float32", name="frame_probs")(x)  # (B, 2)
    return keras.Model(frame, probs, name="residual_frame")


@register("residual-cnn")
def build_residual_cnn(config: ModelConfig):
    """A frame-level forensic CNN on the noise residual of the face, after the small-receptive-field
    detectors of Cozzolino et al. (2017) and Chai et al. ("What makes fake images detectable?", 2020):
    a frozen high-pass, three stages of two 3x3 convolutions, the evidence averaged over the face and
    then over the F frames (the video's p_fake is the mean of its frames'). About 73,000 weights at
    width 1. See docs/quality.md for what it reaches on FaceForensics++."""
    import keras
    from keras import layers

    if config.resolved_size() < FULLY_CONVOLUTIONAL["residual-cnn"]:
        raise ValueError(f"residual-cnn needs frames of at least {FULLY_CONVOLUTIONAL['residual-cnn']} pixels, "
                         f"got {config.resolved_size()}")
    inputs = _clip_input(config)  # (B, F, S, S, 3) uint8
    x = layers.TimeDistributed(_residual_frame_net(config), name="per_frame")(inputs)  # (B, F, 2)
    outputs = layers.GlobalAveragePooling1D(name="video_mean")(x)  # (B, 2): the mean over frames
    return keras.Model(inputs, outputs, name="residual_cnn")




def check_spatial_crop(arch: str, size: int, spatial_crop: int) -> None:
    """ValueError unless ``arch`` is fully convolutional and a crop of ``spatial_crop`` pixels is at least its
    smallest side and smaller than its frames (``size``): a crop as large as the frame is no crop."""
    if arch not in FULLY_CONVOLUTIONAL:
        raise ValueError(f"spatial crops need a fully convolutional architecture "
                         f"({', '.join(sorted(FULLY_CONVOLUTIONAL))}), not {arch}")
    if not FULLY_CONVOLUTIONAL[arch] <= spatial_crop < size:
        raise ValueError(f"{arch} takes spatial crops of {FULLY_CONVOLUTIONAL[arch]} to {size - 1} pixels, "
                         f"not {spatial_crop}")


def training_view(model, config: ModelConfig, spatial_crop: int):
    """The model to fit: ``model`` itself, or, with ``spatial_crop``, a model over the same layers (and
    weights) whose frames may be of any size, so batches of random crops train what scans whole squares."""
    if not spatial_crop:
        return model
    check_spatial_crop(config.arch, config.resolved_size(), spatial_crop)
    import keras

    frames = keras.Input(shape=(config.frames, None, None, 3), dtype="uint8", name="frames")  # (B, F, h, w, 3)
    probs = model.get_layer("video_mean")(model.get_layer("per_frame")(frames))  # (B, 2)
    return keras.Model(frames, probs, name=f"{model.name}_training")


def save_untrained(arch: str, frames: int, size: int | None, width: float, out_dir: str | os.PathLike, name: str,
                   sampling: str = "uniform", *, threshold: float = 0.5,
                   dropout: float = ModelConfig.dropout, data: str = "untrained") -> Path:
    """Build an untrained ``arch`` (``backbone_weights="none"``, so nothing is downloaded) and save it with
    a card like a trained run's, through ``kernels.artifact.save_model``: for benchmarks and tests.
    Its scope says ``data`` ("untrained": every conclusion is untested; tests that stand it in for a
    model measured on real videos say "real"). Returns the path of ``out_dir/model.keras``."""
    from dfscan.kernels.artifact import save_model
    from dfscan.kernels.card import MODEL_FILE
    from dfscan.kernels.scope import measure_scope

    config = ModelConfig(arch=arch, frames=frames, size=size, width=width, backbone_weights="none", dropout=dropout)
    save_model(build_model(config), out_dir, {"name": name, "arch": arch, "frames": frames,
                                              "size": config.resolved_size(), "sampling": sampling,
                                              "threshold": threshold, "class_names": list(CLASS_NAMES),
                                              "scope": measure_scope(data=data, dataset=None, layout=None, videos={},
                                                                     test_metrics=None)})
    return Path(out_dir) / MODEL_FILE
