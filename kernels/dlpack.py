"""Zero-copy hand-off of DALI GPU output to the model's framework through DLPack."""

from __future__ import annotations


def _capsule(dali_tensor):
    if hasattr(dali_tensor, "__dlpack__"):
        return dali_tensor.__dlpack__()
    return dali_tensor._expose_dlpack_capsule()


def to_framework_tensor(dali_tensor):
    """A DALI ``TensorGPU`` as a tensor of the active Keras backend, on the same GPU, no host copy."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.experimental.dlpack.from_dlpack(_capsule(dali_tensor))
    if backend == "jax":
        import jax.dlpack

        return jax.dlpack.from_dlpack(dali_tensor)
    if backend == "torch":
        import torch.utils.dlpack

        return torch.utils.dlpack.from_dlpack(_capsule(dali_tensor))
    raise RuntimeError(f"no DLPack hand-off for Keras backend {backend!r}")


def copy_on_device(tensor):
    """An owned copy of a framework tensor on its own device (the source buffer may be reused)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.raw_ops.DeepCopy(x=tensor)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.array(tensor, copy=True)
    if backend == "torch":
        return tensor.clone()
    raise RuntimeError(f"no device copy for Keras backend {backend!r}")
