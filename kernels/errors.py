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


# Words in a device error after which the CUDA context is unusable (or the device is out of memory):
# no file is to blame, so decoders pass such errors up instead of isolating a file, and the scan worker
# exits so that Ray restarts it with a fresh context.
_DEVICE_ERROR_MARKERS = ("cuda_error", "cudaerror", "cuda error", "cudnn_status", "cublas_status",
                         "illegal memory access", "cuda runtime", "out of memory", "resource_exhausted")


def is_device_error(exc: BaseException) -> bool:
    """An error of the GPU or its memory, not of the file being decoded."""
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or any(marker in text for marker in _DEVICE_ERROR_MARKERS)
