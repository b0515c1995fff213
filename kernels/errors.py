"""The closed set of reasons a video can be refused, stored as data next to a one-line message."""

from __future__ import annotations

import enum


class ErrorClass(str, enum.Enum):
    NOT_FOUND = "NOT_FOUND"
    PERMISSION = "PERMISSION"
    EMPTY = "EMPTY"
    NOT_VIDEO = "NOT_VIDEO"
    CONTAINER_INVALID = "CONTAINER_INVALID"
    DECODE_ERROR = "DECODE_ERROR"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    TIMEOUT = "TIMEOUT"
    UNSUPPORTED_CODEC = "UNSUPPORTED_CODEC"
    # Set by the scanner when one file keeps killing the worker that decodes it.
    DECODER_CRASH = "DECODER_CRASH"
    # Set by the web app when a model file it offers is refused (not .keras, tampered, Lambda layers).
    # The scanner refuses such a model before it starts, so its rows never carry this class.
    MODEL_REFUSED = "MODEL_REFUSED"


class VideoError(Exception):
    """A refusal: one error class plus a one-line, human-readable message."""

    def __init__(self, error_class: ErrorClass, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(f"{error_class.value}: {message}")
        self.error_class = error_class
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"error_class": self.error_class.value, "error_message": self.message}



# A model file that must not be loaded (kernels.artifact, kernels.card, kernels.model_config):
# the closed set of reasons, stored as data beside a one-line message.
class ArtifactProblem(str, enum.Enum):
    NOT_FOUND = "NOT_FOUND"
    LEGACY_HDF5 = "LEGACY_HDF5"
    NOT_KERAS = "NOT_KERAS"
    NO_CARD = "NO_CARD"
    BAD_CARD = "BAD_CARD"
    SHA256_MISMATCH = "SHA256_MISMATCH"
    LAMBDA_LAYER = "LAMBDA_LAYER"
    NO_FAKE_CLASS = "NO_FAKE_CLASS"
    UNSUPPORTED_CROP = "UNSUPPORTED_CROP"
    UNLOADABLE = "UNLOADABLE"
    UNSAFE_CONFIG = "UNSAFE_CONFIG"  # names a class, function or module outside the allowlist, or nests too deeply
    OVERSIZED_ENTRY = "OVERSIZED_ENTRY"  # an archive entry larger, or more compressed, than its limit
    UNSUPPORTED_COMPRESSION = "UNSUPPORTED_COMPRESSION"  # neither stored nor deflated (bzip2, lzma)
    OVERSIZED_INPUT = "OVERSIZED_INPUT"  # more frames, pixels or bytes a batch than the limits allow
    INPUT_MISMATCH = "INPUT_MISMATCH"  # the config's input is not the (B, F, S, S, 3) its card says


class ArtifactError(ValueError):
    """A model file that must not be loaded: one ``ArtifactProblem`` plus a one-line message."""

    def __init__(self, problem: ArtifactProblem, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
        self.problem = problem
        self.message = message

# Words in a device error after which the CUDA context is unusable (or the device is out of memory):
# no file is to blame, so decoders pass such errors up instead of isolating a file, and the scan worker
# exits so that Ray restarts it with a fresh context.
_DEVICE_ERROR_MARKERS = ("cuda_error", "cudaerror", "cuda error", "cudnn_status", "cublas_status",
                         "illegal memory access", "cuda runtime", "out of memory", "resource_exhausted")


def is_device_error(exc: BaseException) -> bool:
    """An error of the GPU or its memory, not of the file being decoded."""
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or any(marker in text for marker in _DEVICE_ERROR_MARKERS)
