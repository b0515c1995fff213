#!/usr/bin/env bash
# The device run tried on this CPU before any device time is spent: the same script
# (benchmarks/device_run.sh), in an environment like the device's (a venv without TensorFlow,
# Keras on JAX, DALI's CUDA 13 wheel, Ray and PyAV as carried there). The GPU tests are collected and
# skip here; the host stage measures the stand-ins on small H.264 files and its real-nvdec half must
# fail in one line (no PyNvVideoCodec); the scan stage runs `dfscan run` on its own local Ray cluster
# with CPU workers (--gpus 0 --workers 1: decoders dali-cpu, auto and pyav, which all read H.264 with
# PyAV here) and compares their p_fake. STAGES="tests host scan check" also runs gpu_check as before
# (DALI's CPU graph for NVDEC, its output down the DLPack hand-off to JAX, VP9 for H.264; its nvdec run
# must fail each stage with a message, not a traceback, and still write its report).
#
#   benchmarks/device_dry_run.sh [OUT_DIR]        (default: device-dry-run/)
# The venv is built once in $DRY_VENV (default /tmp/dfscan-dry-venv); it needs the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DRY_VENV:-/tmp/dfscan-dry-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "jax[cpu]>=0.10" "keras==3.15.1" "nvidia-dali-cuda130==2.4.0" "av==18.1.0" \
    numpy pytest pytest-timeout pyarrow typer rich matplotlib pillow psutil "ray==2.60.0"
fi
# The face stage reads MTCNN's weights from the mtcnn wheel (which needs only lz4 and joblib), as the device does.
"$venv/bin/pip" install -q "mtcnn==1.0.0" "lz4==4.4.5" "joblib==1.6.0" "ray==2.60.0"  # Ray: the scan stage
if "$venv/bin/python" -c "import tensorflow" 2>/dev/null; then
  echo "the dry-run venv must not hold TensorFlow (the device has none)" >&2; exit 2
fi
out=$(realpath -m "${1:-device-dry-run}")
rm -rf "$out"; mkdir -p "$out"
export OUT=$out PYTHON=$venv/bin/python PYTHONPATH=$PWD DFSCAN_DRY_RUN_DLPACK=1
export PYTEST_ARGS="-m gpu tests/kernels/test_gpu.py tests/kernels/test_clips.py tests/kernels/test_gpu_pitfalls.py \
  tests/benchmarks/test_scan_check.py"
export SCAN_ARGS="--videos 8 --distinct 2 --resolution 320x240 --seconds 2" HOST_ARGS="--threads 1,2"
export SCAN_CHECK_ARGS="--gpus 0 --workers 1 --arch cnn-lstm --size 32 --frames 8 --runs dali-cpu:1,auto:1,pyav:1 \
  --agree dali-cpu:1,auto:1,pyav:1" SCAN_BUDGET_S=400 RUN_TIMEOUT_S=200 SCAN_TIMEOUT_S=900 TEST_TIMEOUT_S=300
export DALI_ARGS="--decoders dali-cpu" NVDEC_ARGS="--decoders nvdec --models= --pipelines 1"
export GPU_CHECK_ARGS="--codec vp9 --extra 360x640:vp9 --videos 4 --seconds 2 --resolutions 640x360,320x240 \
  --pipelines 1,2 --batch 2 --size 64 --frames 8 --models cnn-lstm --model-batch 4 --model-repeats 2 \
  --e2e-arch cnn-lstm --e2e-threads 1 --e2e-videos 8" DALI_E2E_PROCESSES=1,2 NVDEC_E2E_PROCESSES=1,2
export FACE_ARGS="--face-videos 4 --face-frames 4 --face-size 320 --face-batch 2"  # Keras on JAX, weights from the wheel
# nvdec has no CPU stand-in in gpu_check (tests/kernels/test_nvdec.py fakes it): its run must fail, cleanly.
benchmarks/device_run.sh
