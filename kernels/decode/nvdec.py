"""NVDEC through PyNvVideoCodec, with persistent decoders: the ``nvdec`` backend.

DALI's ``fn.decoders.video`` builds a new frames decoder for every sample and maps, converts and
synchronises each frame before the next; on an H100 that costs about 0.3 s per 1080p video per
pipeline. Creating an NVDEC decoder costs 50-70 ms, reconfiguring one about 5 ms. So this backend
keeps one decoder per (codec, bit depth) for the life of its reader (one reader per worker thread),
created once for the largest frame it will meet (1920x1920 covers portrait 1080p), and reuses it for
every video: a flush at the end of each video, ``setReconfigParams`` with the next video's size.

The CPU demuxes only the packets the plan needs (``kernels.decode.gops.cut_to_annex_b``) and feeds
them as Annex B, each run (a keyframe and the frames after it that the plan needs) as one packet by
default: the parser finds the access units itself when a packet carries no end-of-picture flag, and
on the H200 one ``Decode`` call per access unit was part of the host time that bounded keyframe
scans (docs/performance.md); ``feed="unit"`` keeps one packet per access unit to compare. NVDEC returns frames in display order,
the wanted ones are copied out of the decoder's buffers at once (they are reused by the next call), and NV12 -> RGB (BT.601, limited
range, as FFmpeg does for an untagged stream) and the antialiased resize to S x S run on the GPU in
one compiled function. The clip reaches the model through DLPack without visiting the host. With
``full_res_cap`` (``crop="face"``) the frames keep their own shape: converted at native size, resized
only where the long side exceeds the cap (``kernels.resize.capped_size``), as ``dali-gpu`` does.

Everything here but NVDEC itself is tested on the CPU: the Annex B stream decodes with FFmpeg to the
file's frames (tests/kernels/test_annex_b.py), and the colour conversion and resize run on the CPU
backend of the same framework (tests/kernels/test_nvdec.py).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from dfscan.kernels.decode import NVDEC_BACKEND_CODECS, nvdec_refusal
from dfscan.kernels.decode.base import DecoderBase
from dfscan.kernels.decode.gops import CutUnsupported, cut_to_annex_b
from dfscan.kernels.errors import ErrorClass, VideoError, is_device_error
from dfscan.kernels.probe import Probe
from dfscan.kernels.sampling import split_unique

MAX_SIDE = 1920  # a decoder is created for up to MAX_SIDE x MAX_SIDE: 1080p, landscape or portrait
NVDEC_FEEDS = ("run", "unit")  # one packet per run of the cut, or one per access unit


class NvdecUnavailable(RuntimeError):
    """PyNvVideoCodec or the driver's NVDEC library cannot be loaded here."""


@functools.lru_cache(maxsize=1)
def load_pynvvideocodec():
    """The PyNvVideoCodec module. Without a driver its import raises RuntimeError, not ImportError."""
    try:
        import PyNvVideoCodec
    except Exception as exc:  # noqa: BLE001 - RuntimeError without libnvidia-encode/libcuda
        first = f"PyNvVideoCodec cannot be loaded: {' '.join(str(exc).split())[:200]}"
    else:
        return PyNvVideoCodec
    # Its __init__ first probes the NVENC library (libnvidia-encode), which a machine whose driver
    # exposes only decoding lacks; the decoder extension itself needs only libcuda and libnvcuvid.
    try:
        return _load_extension_alone()
    except Exception:  # noqa: BLE001 - report the package's own reason
        raise NvdecUnavailable(first) from None


def _load_extension_alone():
    import ctypes
    import glob
    import importlib.util
    import os

    ctypes.CDLL("libnvcuvid.so.1")  # raises OSError where the driver has no NVDEC library
    spec = importlib.util.find_spec("PyNvVideoCodec")
    if spec is None or spec.origin is None:
        raise ImportError("PyNvVideoCodec is not installed")
    package = os.path.dirname(spec.origin)
    for candidate in sorted(glob.glob(os.path.join(package, "PyNvVideoCodec_1*.so")), reverse=True):  # _130 first
        extension = importlib.util.spec_from_file_location("_PyNvVideoCodec", candidate)
        module = importlib.util.module_from_spec(extension)
        try:
            extension.loader.exec_module(module)
        except ImportError:
            continue
        return module
    raise ImportError("no PyNvVideoCodec extension loads here")


def nvdec_available() -> bool:
    try:
        load_pynvvideocodec()
    except NvdecUnavailable:
        return False
    return True


def decoder_caps(codec: str, bit_depth: int = 8) -> dict:
    """What NVDEC on GPU 0 says it can do for 4:2:0 ``codec``: engines, minimum and maximum sizes."""
    nvc = load_pynvvideocodec()
    codecs = {"h264": nvc.cudaVideoCodec.H264, "hevc": nvc.cudaVideoCodec.HEVC}
    caps = nvc.GetDecoderCaps(gpuid=0, codec=codecs[codec], chromaformat=getattr(nvc.cudaVideoChromaFormat, "420"),
                              bitdepth=bit_depth)
    return {key: (int(value) if isinstance(value, (int, bool)) or hasattr(value, "__index__") else str(value))
            for key, value in dict(caps).items()}


class _Dlpack:
    """A decoded frame as the DLPack protocol's consumers call it. PyNvVideoCodec refuses stream 0
    and None; its decoder synchronises each frame before returning it, so stream 1 (legacy default)
    adds no wait."""

    def __init__(self, frame):
        self.frame = frame

    def __dlpack__(self, stream=None, **_):
        return self.frame.__dlpack__(1)

    def __dlpack_device__(self):
        return self.frame.__dlpack_device__()


# --- NV12 -> RGB and resize, in the model's framework --------------------------------------------------

# BT.601 limited range, as swscale converts an untagged stream (the PyAV backend's rule).
_Y_OFFSET, _Y_SCALE = 16.0, 255.0 / 219.0
_C_SCALE = 255.0 / 224.0
_R_V, _G_U, _G_V, _B_U = 1.402, -0.344136, -0.714136, 1.772


def nv12_to_rgb_resized(nv12, height: int, width: int, out_height: int, out_width: int):
    """(N, H*3/2, W) uint8 NV12 -> (N, h, w, 3) uint8 RGB, the whole frame resized to h x w (S x S:
    squashed) with an antialiased bilinear filter (``kernels.resize``'s rule); at (H, W) it is only
    converted. Backend-neutral Keras ops."""
    from keras import ops

    frames = ops.cast(nv12, "float32")
    luma = (frames[:, :height, :] - _Y_OFFSET) * _Y_SCALE  # (N, H, W)
    chroma = ops.reshape(frames[:, height:, :], (-1, height // 2, width // 2, 2))  # (N, H/2, W/2, 2) U, V
    chroma = (chroma - 128.0) * _C_SCALE
    chroma = ops.repeat(ops.repeat(chroma, 2, axis=1), 2, axis=2)  # (N, H, W, 2)
    u, v = chroma[..., 0], chroma[..., 1]
    rgb = ops.stack([luma + _R_V * v, luma + _G_U * u + _G_V * v, luma + _B_U * u], axis=-1)  # (N, H, W, 3)
    if (out_height, out_width) != (height, width):
        rgb = ops.image.resize(rgb, (out_height, out_width), interpolation="bilinear", antialias=True,
                               data_format="channels_last")  # (N, h, w, 3)
    return ops.cast(ops.clip(ops.round(rgb), 0, 255), "uint8")


@functools.lru_cache(maxsize=32)
def _compiled_conversion(count: int, height: int, width: int, out_height: int, out_width: int):
    """One compiled conversion per frame count, source and output size (the count is padded to F)."""
    import keras

    def convert(nv12):
        return nv12_to_rgb_resized(nv12, height, width, out_height, out_width)

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(convert)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(convert)  # XLA has no kernel for the antialiased resize (ScaleAndTranslate)
    return convert


def _to_framework(frame):
    """A decoded frame (NV12, on the GPU) as a tensor of the model's framework, copied out of the
    decoder's buffer (the next Decode call overwrites it)."""
    import keras

    from dfscan.kernels.dlpack import copy_on_device

    backend = keras.backend.backend()
    if backend == "jax":
        import jax.dlpack

        return copy_on_device(jax.dlpack.from_dlpack(_Dlpack(frame)))
    if backend == "tensorflow":
        import tensorflow as tf

        return copy_on_device(tf.experimental.dlpack.from_dlpack(frame.__dlpack__(1)))
    if backend == "torch":
        import torch

        return torch.from_dlpack(_Dlpack(frame)).clone()
    raise RuntimeError(f"no DLPack hand-off for Keras backend {backend!r}")


# --- the decoder pool -------------------------------------------------------------------------------


class NvdecDecoder(DecoderBase):
    name = "nvdec"

    def __init__(self, size: int, device_id: int = 0, max_side: int = MAX_SIDE, full_res_cap: int | None = None,
                 feed: str = "run"):
        if feed not in NVDEC_FEEDS:
            raise ValueError(f"unknown nvdec feed {feed!r}; expected one of {', '.join(NVDEC_FEEDS)}")
        self.size = size
        self.full_res_cap = full_res_cap  # None: squash to S x S; else the long side's cap, aspect kept
        self.feed = feed
        self.device_id = device_id
        self.max_side = max_side
        self.frames_decoded = 0  # every frame NVDEC returned, wanted or not
        self.files_cut = 0
        self.files_whole = 0  # always 0: a stream that cannot be cut is this file's error (PyAV retries)
        self.decoders_created = 0
        self.packets_fed = 0  # Decode calls with data (the flush not counted)
        self._decoders: dict[tuple, object] = {}

    def decoder_for(self, probe: Probe):
        """The persistent decoder for this stream's codec and bit depth, reconfigured to its size."""
        nvc = load_pynvvideocodec()
        side = max(self.max_side, _round_up(max(probe.width, probe.height), 32))
        key = (probe.codec, probe.bit_depth, side)
        if key not in self._decoders:
            codec = {"h264": nvc.cudaVideoCodec.H264, "hevc": nvc.cudaVideoCodec.HEVC}[probe.codec]
            self._decoders[key] = nvc.CreateDecoder(
                gpuid=self.device_id, codec=codec, cudacontext=0, cudastream=0, usedevicememory=True,
                maxwidth=side, maxheight=side, outputColorType=nvc.OutputColorType.NATIVE)
            self.decoders_created += 1
        decoder = self._decoders[key]
        # Without this a video of another size comes out scaled to the previous one's.
        decoder.setReconfigParams(probe.width, probe.height)
        return key, decoder

    def _decode_file(self, probe: Probe, indices: np.ndarray):
        """(F, S, S, 3) uint8 on the GPU for one file; (F, h, w, 3) with ``full_res_cap``."""
        unique, inverse = split_unique(indices)  # (U,), (F,)
        cut = cut_to_annex_b(probe, unique)
        self.files_cut += 1
        copies = self._feed(probe, cut)
        return self._assemble(probe, copies, indices, inverse)

    def _feed(self, probe: Probe, cut) -> list:
        """The cut through the persistent decoder: one copy of each wanted frame, in ``cut.frames``' order."""
        nvc = load_pynvvideocodec()
        wanted = {int(position): rank for rank, position in enumerate(cut.frames.tolist())}
        copies: list = [None] * len(wanted)
        key, decoder = self.decoder_for(probe)
        produced = 0
        try:
            for unit in _packets(cut, self.feed) + [b""]:  # the empty packet flushes the decoder
                payload = np.frombuffer(unit, dtype=np.uint8)  # kept alive through Decode
                packet = nvc.PacketData()
                if payload.size:
                    packet.bsl_data, packet.bsl = payload.ctypes.data, payload.size
                    self.packets_fed += 1
                for frame in decoder.Decode(packet):
                    if produced in wanted:
                        copies[wanted[produced]] = self._hand_off(frame)
                    produced += 1
        except Exception:
            self._decoders.pop(key, None)  # a decoder that failed mid-stream is not trusted again
            raise
        finally:
            self.frames_decoded += produced
        if any(copy is None for copy in copies):
            raise VideoError(ErrorClass.DECODE_ERROR, f"NVDEC returned {produced} frames; the plan needs frame "
                                                      f"{int(cut.frames.max())} of the cut stream")
        return copies

    @staticmethod
    def _hand_off(frame):
        """A decoded frame copied out of the decoder's buffer into the model's framework (on the GPU)."""
        return _to_framework(frame)

    def _assemble(self, probe: Probe, copies: list, indices: np.ndarray, inverse: np.ndarray):
        """The wanted frames converted and resized on the GPU, repeated as the plan repeats them."""
        from keras import ops

        padded = copies + [copies[-1]] * (len(indices) - len(copies))  # one compiled shape per source size
        out_width, out_height = self.output_size(probe)
        convert = _compiled_conversion(len(padded), probe.height, probe.width, out_height, out_width)
        frames = convert(ops.stack(padded))  # (F', h, w, 3) uint8
        return ops.take(frames, ops.convert_to_tensor(inverse.astype(np.int32)), axis=0)  # (F, h, w, 3)

    def decode_batch(self, probes: Sequence[Probe], plans: Sequence[np.ndarray]):
        """Per file, (F, S, S, 3) (or (F, h, w, 3)) uint8 on the GPU or None, and a VideoError or None (as DaliDecoder).
        A file NVDEC cannot read is that file's error; device errors propagate."""
        frames_out, errors_out = [], []
        for probe, plan in zip(probes, plans):
            try:
                if probe.codec not in NVDEC_BACKEND_CODECS or probe.height % 2 or probe.width % 2:
                    raise VideoError(ErrorClass.UNSUPPORTED_CODEC, f"nvdec reads 4:2:0 H.264/HEVC of even size, "
                                                                   f"not {probe.codec} {probe.width}x{probe.height}")
                refusal = nvdec_refusal(probe) or (None if probe.bit_depth == 8 else
                                                   f"nvdec reads 8-bit streams, not {probe.bit_depth}-bit")
                if refusal is not None:  # 4:2:2, 4:4:4: NVDEC would fail mid-stream, or worse, not fail
                    raise VideoError(ErrorClass.UNSUPPORTED_CODEC, refusal)
                frames_out.append(self._decode_file(probe, plan))
                errors_out.append(None)
            except VideoError as exc:
                frames_out.append(None)
                errors_out.append(exc)
            except OSError as exc:  # gone or unreadable since the probe
                frames_out.append(None)
                errors_out.append(VideoError(ErrorClass.NOT_FOUND if isinstance(exc, FileNotFoundError)
                                             else ErrorClass.DECODE_ERROR, f"cannot read {probe.path}: {exc}"))
            except CutUnsupported as exc:
                frames_out.append(None)
                errors_out.append(VideoError(ErrorClass.DECODE_ERROR, f"nvdec: {exc}"))
            except NvdecUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - PyNvVCException and the like: this file's fault
                if is_device_error(exc):
                    raise
                frames_out.append(None)
                errors_out.append(VideoError(ErrorClass.DECODE_ERROR, f"nvdec: {type(exc).__name__}: {exc}"))
        return frames_out, errors_out


def _packets(cut, feed: str) -> list[bytes]:
    """What each ``Decode`` call gets: one run of the cut per packet, or one access unit per packet.
    No end-of-picture flag is set either way (``decode_flag`` 0), so NVDEC's parser splits a run at
    its start codes exactly as it does a file's stream."""
    if feed == "unit":
        return list(cut.access_units)
    ends = [*cut.run_starts.tolist()[1:], len(cut.access_units)]
    return [b"".join(cut.access_units[start:end]) for start, end in zip(cut.run_starts.tolist(), ends)]


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step
