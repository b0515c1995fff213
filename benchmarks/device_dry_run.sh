#!/usr/bin/env bash
# The device run tried on this CPU before any device time is spent: the same script
# (benchmarks/device_run.sh), in an environment like the device's (a venv without TensorFlow,
# Keras on JAX, DALI's CUDA 13 wheel), with DALI's CPU graph standing in for NVDEC, its output sent
# down the same DLPack hand-off to JAX, and VP9 standing in for H.264 (DALI's CPU decoder reads no
# H.264). The GPU tests are collected and skip here; gpu_check runs every dali stage at a small size, and
# its nvdec run must fail each stage with a message, not a traceback, and still write its report.
#
#   benchmarks/device_dry_run.sh [OUT_DIR]        (default: device-dry-run/)
# The venv is built once in $DRY_VENV (default /tmp/dfscan-dry-venv); it needs the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DRY_VENV:-/tmp/dfscan-dry-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "jax[cpu]>=0.10" "keras==3.15.1" "nvidia-dali-cuda130==2.4.0" "av==18.1.0" \
    numpy pytest pytest-timeout pyarrow typer rich matplotlib pillow psutil
fi
# The face stage reads MTCNN's weights from the mtcnn wheel (which needs only lz4 and joblib), as the device does.
"$venv/bin/pip" install -q "mtcnn==1.0.0" "lz4==4.4.5" "joblib==1.6.0"
if "$venv/bin/python" -c "import tensorflow" 2>/dev/null; then
  echo "the dry-run venv must not hold TensorFlow (the device has none)" >&2; exit 2
fi
out=$(realpath -m "${1:-device-dry-run}")
rm -rf "$out"; mkdir -p "$out"
export OUT=$out PYTHON=$venv/bin/python PYTHONPATH=$PWD DFSCAN_DRY_RUN_DLPACK=1
export PYTEST_ARGS="-m gpu tests/kernels/test_gpu.py tests/kernels/test_clips.py"
export DALI_ARGS="--decoders dali-cpu" NVDEC_ARGS="--decoders nvdec --models= --pipelines 1"
export GPU_CHECK_ARGS="--codec vp9 --extra 360x640:vp9 --videos 4 --seconds 2 --resolutions 640x360,320x240 \
  --pipelines 1,2 --batch 2 --size 64 --frames 8 --models cnn-lstm --model-batch 4 --model-repeats 2 \
  --e2e-arch cnn-lstm --e2e-threads 1 --e2e-videos 8" DALI_E2E_PROCESSES=1,2 NVDEC_E2E_PROCESSES=1,2
export FACE_ARGS="--face-videos 4 --face-frames 4 --face-size 320 --face-batch 2"  # Keras on JAX, weights from the wheel
# nvdec has no CPU stand-in here (tests/kernels/test_nvdec.py fakes it): its run must fail, cleanly.
benchmarks/device_run.sh
