#!/usr/bin/env bash
# The GPU issue's one prepared device run, for a lent H100/H200 (about 8 minutes in all).
#
# On the device machine, after the wheels have been carried and installed into /tmp/site
# (docs/performance.md gives the whole call sequence):
#   export PYTHONPATH=/tmp/site:$PWD; benchmarks/device_run.sh
# Everything it measures lands in $OUT (8 files): nvidia-smi.txt (clocks), utilization.csv (decoder
# and GPU utilisation every 500 ms), pytest.log (the GPU tests), gpu_check.log, and the reports of
# dali-gpu (with the model stage) and of nvdec (with NVDEC's engine count): {dali,nvdec}/report.{json,md}.
# Exit 0 only if every test and check passed.
#
# benchmarks/device_dry_run.sh runs this same script on a CPU first.
set -uo pipefail
out=${OUT:?set OUT to the folder for the results}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
python=${PYTHON:-python3}
status=0
started=$(date +%s)

monitor=""
if command -v nvidia-smi >/dev/null; then
  { nvidia-smi; nvidia-smi -q -d CLOCK,PERFORMANCE,UTILIZATION; nvidia-smi -q | grep -i -E "product name|driver version|cuda version|decoder|encoder|video"; } \
    > "$out/nvidia-smi.txt" 2>&1
  nvidia-smi --query-gpu=timestamp,utilization.decoder,utilization.gpu,clocks.video,clocks.sm,memory.used \
    --format=csv -lms 500 > "$out/utilization.csv" 2>&1 &
  monitor=$!
else
  echo "no nvidia-smi on this machine" > "$out/nvidia-smi.txt"
fi

# shellcheck disable=SC2086  # the argument lists are word lists on purpose
timeout "${TEST_TIMEOUT_S:-100}" "$python" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:--m gpu tests/kernels/test_gpu.py tests/kernels/test_clips.py} \
  > "$out/pytest.log" 2>&1 || status=1
echo "== pytest ($(( $(date +%s) - started )) s)"; tail -n 15 "$out/pytest.log"

# Two processes, so that a decoder that takes the process down (a CUDA error inside PyNvVideoCodec
# exits it) cannot lose the other's numbers; the second reuses the first's videos.
archive=$(mktemp -d /tmp/dfscan-device-archive.XXXXXX)
# shellcheck disable=SC2086
timeout "${DALI_TIMEOUT_S:-250}" "$python" -m benchmarks.gpu_check --out "$out/dali" --archive-dir "$archive" \
  --budget-s "${DALI_BUDGET_S:-180}" ${DALI_ARGS:---decoders dali-gpu} ${GPU_CHECK_ARGS:-} > "$out/gpu_check.log" 2>&1 || status=1
echo "== gpu_check dali ($(( $(date +%s) - started )) s)"
grep -v -E "^(WARNING|I0000|W0000)" "$out/gpu_check.log" | tail -n 50
# shellcheck disable=SC2086
timeout "${NVDEC_TIMEOUT_S:-150}" "$python" -m benchmarks.gpu_check --out "$out/nvdec" --archive-dir "$archive" \
  --budget-s "${NVDEC_BUDGET_S:-95}" ${NVDEC_ARGS:---decoders nvdec --models= --pipelines 1,4,8} ${GPU_CHECK_ARGS:-} \
  >> "$out/gpu_check.log" 2>&1 || status=1
echo "== gpu_check nvdec ($(( $(date +%s) - started )) s)"
grep -v -E "^(WARNING|I0000|W0000)" "$out/gpu_check.log" | tail -n 40
rm -f "$out"/*/throughput.png  # what comes back from the device is at most 8 files
rm -rf "$archive"

[ -n "$monitor" ] && kill "$monitor" 2>/dev/null
echo "== exit $status after $(( $(date +%s) - started )) s"
exit $status
