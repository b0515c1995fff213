"""Decoders behind one interface (``kernels.decode.base.Decoder``), and the per-file choice between them.

Every backend yields RGB uint8 frames resized to S x S by the rule in ``kernels.resize`` or, given
``full_res_cap`` (``crop="face"``), at the file's own shape with the long side capped
(``kernels.resize.capped_size``), for the face crop to be cut from:
- ``dali-gpu``: DALI ``mixed`` (NVDEC) decode and GPU resize; the output stays on the GPU.
- ``dali-cpu``: the same DALI graph on the CPU; DALI 2.4 reads only VP8, VP9 and MJPEG there.
- ``pyav``: FFmpeg through PyAV, for every codec FFmpeg reads.
- ``nvdec``: NVDEC through PyNvVideoCodec with persistent decoders, fed only the GOPs a plan needs
  (8-bit 4:2:0 H.264 and HEVC); the output stays on the GPU.
"""

from __future__ import annotations

import ctypes
import functools
import os

from dfscan.kernels.probe import Probe

DECODERS: tuple[str, ...] = ("auto", "pyav", "dali-cpu", "dali-gpu", "nvdec")
GPU_OUTPUT_DECODERS = frozenset({"dali-gpu", "nvdec"})  # their clips stay on the GPU
NVDEC_BACKEND_CODECS = frozenset({"h264", "hevc"})  # what the nvdec backend feeds as Annex B (8-bit)
DALI_CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})

# What NVDEC on Hopper decodes, per codec: (chroma formats, bit depths, min width, min height, max width,
# max height), from NVIDIA's decoder caps. H.264 is 8-bit 4:2:0 only (FaceForensics++ c23 is 4:4:4 and
# failed on an H100); 10-bit H.264 is Blackwell-only; Hopper has no AV1 decoding. HEVC needs at least
# 144x144 and VP9 128x128. MJPEG stays on DALI's CPU decoder.
NVDEC_SUPPORT: dict[str, tuple[frozenset[str], frozenset[int], int, int, int, int]] = {
    "h264": (frozenset({"420"}), frozenset({8}), 48, 16, 4096, 4096),
    "hevc": (frozenset({"420"}), frozenset({8, 10}), 144, 144, 8192, 8192),
    "vp9": (frozenset({"420"}), frozenset({8}), 128, 128, 8192, 8192),
    "vp8": (frozenset({"420"}), frozenset({8}), 48, 16, 4096, 4096),
    "mpeg4": (frozenset({"420"}), frozenset({8}), 48, 16, 2032, 2032),
}


@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """CUDA devices visible to this process (honours CUDA_VISIBLE_DEVICES); 0 without a driver."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def nvdec_supports(probe: Probe) -> bool:
    support = NVDEC_SUPPORT.get(probe.codec)
    if support is None:
        return False
    chromas, depths, min_width, min_height, max_width, max_height = support
    return (probe.chroma in chromas and probe.bit_depth in depths and min_width <= probe.width <= max_width
            and min_height <= probe.height <= max_height)


def nvdec_refusal(probe: Probe) -> str | None:
    """Why NVDEC on this GPU generation cannot read the file (None where it can): what a clip that a
    GPU decoder was asked for, and PyAV read instead, records as its ``fallback_reason``."""
    support = NVDEC_SUPPORT.get(probe.codec)
    if support is None:
        return f"NVDEC reads no {probe.codec}"
    chromas, depths, min_width, min_height, max_width, max_height = support
    if probe.chroma not in chromas:
        chroma = f"4:{probe.chroma[1]}:{probe.chroma[2]}" if probe.chroma and len(probe.chroma) == 3 else probe.chroma
        return f"NVDEC reads {probe.codec} in 4:2:0 only, not {chroma}"
    if probe.bit_depth not in depths:
        return f"NVDEC reads {probe.codec} at {' or '.join(map(str, sorted(depths)))} bits, not {probe.bit_depth}"
    if not (min_width <= probe.width <= max_width and min_height <= probe.height <= max_height):
        return (f"NVDEC reads {probe.codec} from {min_width}x{min_height} to {max_width}x{max_height}, "
                f"not {probe.width}x{probe.height}")
    return None


def choose_decoder(probe: Probe, requested: str = "auto", gpu: bool | None = None) -> str:
    """The backend for one file. ``auto`` on a GPU: ``nvdec`` for 8-bit 4:2:0 H.264 and HEVC when
    PyNvVideoCodec loads, ``dali-gpu`` for the rest NVDEC reads (10-bit HEVC, VP8/VP9, MPEG-4), then
    ``dali-cpu`` for VP8/VP9/MJPEG, then ``pyav``. An explicit request is honoured only where it can
    read the file; otherwise the file goes where ``auto`` sends it (``pyav`` for the CPU backends)."""
    if requested not in DECODERS:
        raise ValueError(f"unknown decoder {requested!r}; expected one of {', '.join(DECODERS)}")
    gpu = gpu_count() > 0 if gpu is None else gpu
    if requested == "pyav":
        return "pyav"
    # nvdec before dali-gpu: on an H200 it decoded keyframe-sampled 1080p H.264 3x faster (32 against
    # 10.8 videos/s, 4 threads each) and was never slower (docs/performance.md).
    if requested in ("auto", "nvdec") and gpu and nvdec_supports(probe) and probe.codec in NVDEC_BACKEND_CODECS \
            and probe.bit_depth == 8:
        from dfscan.kernels.decode.nvdec import nvdec_available

        if nvdec_available():
            return "nvdec"
    if requested == "nvdec":
        requested = "auto"  # what nvdec cannot read goes where auto sends it
    if requested in ("auto", "dali-gpu") and gpu and nvdec_supports(probe):
        return "dali-gpu"
    if requested in ("auto", "dali-cpu", "dali-gpu") and probe.codec in DALI_CPU_CODECS:
        return "dali-cpu"
    return "pyav"
