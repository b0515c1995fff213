#!/usr/bin/env bash
# The GPU issue's one prepared device run, for a lent H100/H200: at most 600 s by its timeouts
# (tests 120, archive 60, host 2 x 35, scan 345: its runs start within 235 s and each stops at 100).
#
# On the device machine, after the wheels have been carried and installed into /tmp/site
# (docs/performance.md gives the whole call sequence; Ray and what `dfscan run` needs are among them):
#   export PYTHONPATH=$PWD:/tmp/site; benchmarks/device_run.sh
# Stages (STAGES, default "tests host scan"; add "check" for gpu_check's dali and nvdec reports of the
# earlier runs, which do not fit beside the others in one call):
# - tests: the GPU tests (pytest.log): tests/kernels/test_gpu.py, test_clips.py, the decoder pitfalls
#   (test_gpu_pitfalls.py: 530/532 rows on one decoder, an SPS change mid-stream, H.264 -> HEVC -> H.264,
#   4:2:2/4:4:4 sent to PyAV with the reason) and p_fake agreement of nvdec and dali-gpu with PyAV
#   (tests/benchmarks/test_scan_check.py: median difference at most 0.02).
# - host: the host side of nvdec and dali-gpu against free stand-ins (CPU ms per video, 1/2/4 threads and
#   2 processes), then nvdec for real with its Decode calls timed, beside a counting thread (host.log).
# - scan: the nightly command itself, `dfscan run ARCHIVE --gpus 1 --workers-per-gpu W --decoder D --json`
#   on its own local Ray cluster over 256 1080p files (32 encodes, hard-linked): videos/s from each run's
#   summary, rows ok, decoder per row, fallbacks; p_fake agreement of nvdec, dali-gpu and pyav on the
#   same files (scan.log, scan/scan.json).
# nvidia-smi.txt (clocks) and utilization.csv (decoder and GPU utilisation every 500 ms) come back too.
# Exit 0 only if every stage passed.
#
# benchmarks/device_dry_run.sh runs this same script on a CPU first.
set -uo pipefail
out=${OUT:?set OUT to the folder for the results}
mkdir -p "$out"
cd "$(dirname "$0")/.."
# What the scripts import is dfscan.* (dfscan.kernels, ...), as installed; the device installs nothing of
# dfscan's: links under dfscan/ (git ignores them) name the top-level folders as the package does.
# They are removed on exit: a `pip install -e .` run while they exist would map dfscan.* through them.
links=()
for floor in kernels scanner training benchmarks; do
  [ -e "dfscan/$floor" ] || { ln -s "../$floor" "dfscan/$floor" && links+=("dfscan/$floor"); }
done
trap 'rm -f "${links[@]}"' EXIT
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# Every dfscan run starts its workers afresh: compiled programs are kept on disk so that only the first
# run of a model pays for XLA's compile (resnet50-lstm: about 40 s each with 4 processes on the H200).
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/dfscan-jax-cache}
python=${PYTHON:-python3}
stages=" ${STAGES:-tests host scan} "
status=0
started=$(date +%s)
work=$(mktemp -d /tmp/dfscan-device-work.XXXXXX)

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
quiet() { grep -v -E "^(WARNING|I0000|W0000|E0000)" "$@"; }

if [[ $stages == *" tests "* ]]; then
  # shellcheck disable=SC2086  # the argument lists are word lists on purpose
  timeout "${TEST_TIMEOUT_S:-120}" "$python" -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:--m gpu tests/kernels/test_gpu.py \
    tests/kernels/test_clips.py tests/kernels/test_gpu_pitfalls.py tests/benchmarks/test_scan_check.py} \
    > "$out/pytest.log" 2>&1 || status=1
  echo "== pytest ($(( $(date +%s) - started )) s)"; tail -n 15 "$out/pytest.log"
fi

# The scan stage's archive, encoded once in parallel (16 cores: about 20 s); the host stage reads its 32 encodes.
# shellcheck disable=SC2086
SCAN_ARGS=${SCAN_ARGS:---videos 256 --distinct 32 --resolution 1080p --seconds 10}
if [[ $stages == *" host "* || $stages == *" scan "* ]]; then
  # shellcheck disable=SC2086
  timeout 60 "$python" -m dfscan.benchmarks.scan_check --out "$out/scan" --work "$work" $SCAN_ARGS --archive-only \
    > "$out/archive.log" 2>&1 || status=1
  echo "== archive ($(( $(date +%s) - started )) s)"; tail -n 2 "$out/archive.log"
fi

if [[ $stages == *" host "* ]]; then
  # shellcheck disable=SC2086
  timeout "${HOST_TIMEOUT_S:-35}" "$python" -m dfscan.benchmarks.host_path --archive "$work/encoded" --rounds 1 \
    --json "$out/host.json" ${HOST_ARGS:-} > "$out/host.log" 2>&1 || status=1
  # shellcheck disable=SC2086
  timeout "${HOST_TIMEOUT_S:-35}" "$python" -m dfscan.benchmarks.host_path --archive "$work/encoded" --rounds 1 --real \
    --decoders nvdec --threads 1,4 --processes 0 --spin 1 --json "$out/host-real.json" ${HOST_ARGS:-} \
    >> "$out/host.log" 2>&1 || status=1
  echo "== host ($(( $(date +%s) - started )) s)"; quiet "$out/host.log" | tail -n 16
fi

if [[ $stages == *" scan "* ]]; then
  # Runs in order of need: the agreement's three first, then nvdec with 8 and 1 workers, then auto; a run
  # starts only while the budget lasts, and each has its own timeout.
  # shellcheck disable=SC2086
  timeout "${SCAN_TIMEOUT_S:-345}" "$python" -m dfscan.benchmarks.scan_check --out "$out/scan" --work "$work" $SCAN_ARGS \
    --budget-s "${SCAN_BUDGET_S:-235}" --run-timeout-s "${RUN_TIMEOUT_S:-100}" ${SCAN_CHECK_ARGS:-} \
    > "$out/scan.log" 2>&1 || status=1
  echo "== scan ($(( $(date +%s) - started )) s)"; quiet "$out/scan.log" | tail -n 20
fi

if [[ $stages == *" check "* ]]; then
  # gpu_check as the fourth and fifth sessions ran it (dali-gpu and nvdec agreement, rates, end to end without Ray).
  common="--videos 16 --resolutions 1080p --e2e-threads 4"
  # shellcheck disable=SC2086
  timeout "${DALI_TIMEOUT_S:-240}" "$python" -m dfscan.benchmarks.gpu_check --out "$out/dali" --archive-dir "$work/check" \
    --budget-s "${DALI_BUDGET_S:-180}" $common --e2e-processes "${DALI_E2E_PROCESSES:-1,2,4}" \
    ${DALI_ARGS:---decoders dali-gpu --feeds gops --pipelines 4 --models= --e2e-videos 64} \
    ${FACE_ARGS:---face-videos 16 --face-frames 4 --face-size 320 --face-batch 8} \
    ${GPU_CHECK_ARGS:-} > "$out/gpu_check.log" 2>&1 || status=1
  # shellcheck disable=SC2086
  timeout "${NVDEC_TIMEOUT_S:-240}" "$python" -m dfscan.benchmarks.gpu_check --out "$out/nvdec" --archive-dir "$work/check" \
    --budget-s "${NVDEC_BUDGET_S:-180}" $common --e2e-processes "${NVDEC_E2E_PROCESSES:-1,4,6,8}" ${NVDEC_ARGS:---decoders nvdec --models= --pipelines 1,4,8 --nvdec-engine} \
    ${GPU_CHECK_ARGS:-} >> "$out/gpu_check.log" 2>&1 || status=1
  echo "== gpu_check ($(( $(date +%s) - started )) s)"; quiet "$out/gpu_check.log" | tail -n 40
  rm -f "$out"/*/throughput.png  # what comes back from the device is a few files
fi

rm -rf "$work"
[ -n "$monitor" ] && kill "$monitor" 2>/dev/null
echo "== exit $status after $(( $(date +%s) - started )) s"
exit $status
