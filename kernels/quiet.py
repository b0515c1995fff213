"""A quiet start for the deep-learning library: users see dfscan's own output, not TensorFlow's.

TensorFlow's native code logs through absl before absl is initialised ("All log messages before
absl::InitializeLog() is called are written to STDERR", oneDNN notices, and on a machine without CUDA
an ``E0000 ... failed call to cuInit`` line that reads like an error). No environment variable
silences those first lines: ``TF_CPP_MIN_LOG_LEVEL`` is read only once absl is up. So the import
itself runs with file descriptor 2 pointed at a temporary file, which is replayed only if the import
fails; from then on ``TF_CPP_MIN_LOG_LEVEL=3`` keeps the native side quiet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator

_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Send what native code writes to stderr into a temporary file; replay it if the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def verbose_requested() -> bool:
    """`dfscan --verbose`: the libraries may log as they like (its children inherit the setting)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


def quiet_deep_learning_start() -> None:
    """Import Keras (and TensorFlow, when it is the backend) without their start-up chatter, and keep
    their later informational logging and Python warnings out of the user's terminal. Children
    (Ray workers, the web app's server) inherit the environment part."""
    if verbose_requested():
        return
    for name, value in _QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if "tensorflow" in sys.modules:  # too late to hide its start; the level above still applies
        return
    with native_stderr_captured():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the cuInit probe, which logs on CPU-only machines
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow)(\.|$)")
