#!/usr/bin/env bash
# The GPU check of LocalMILoss: the CUDA tests, then the benchmark of its execution paths.
#
#   bash benchmarks/gpu_check.sh            # from a fresh copy of the repository
#
# Needs a machine with an NVIDIA GPU and torch with CUDA already installed; nothing is
# downloaded when the project's other dependencies (numpy, einops, pytest, hypothesis) are
# there. Otherwise it installs the project (`pip install -e .`) pinned to the torch already
# installed, so pip never pulls a different torch. Phases run under timeouts and the whole
# check finishes in under 5 minutes (220 s on an NVIDIA H200):
#
#   1. environment   (20 s)   torch, CUDA, GPU, dependencies
#   2. CUDA tests    (110 s)  tests/test_local_cuda.py, the CUDA test of tests/test_local.py,
#                             the autocast tests of the scores and the local paths (CPU and
#                             CUDA), and the two-GPU NCCL test when two GPUs exist
#   3. benchmark     (150 s)  16x16 cells x 1 sentence, D = 128, B in {1024, 4096, 16384},
#                             float32 and bfloat16: hand-written, dense, blocked, attention;
#                             time and torch.cuda.max_memory_allocated per version
#   4. estimate_mi   (150 s)   benchmarks/estimate_gpu.py: the default on n = 5,000 pairs on
#                             the GPU it picks by itself (device=None) and on the CPU
#
# It prints a markdown table and writes benchmarks/results/local_loss_gpu.{json,md}. The exit
# status is that of the first failed phase (the benchmark runs even when a test fails).
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "gpu_check.sh: no Python interpreter '$PY' on PATH; set PYTHON=/path/to/python" \
         "(the one with torch and CUDA)" >&2
    exit 1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this copy's mitools, installed or not
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
status=0
start=$(date +%s)

phase() { echo; echo "== $1 ($(($(date +%s) - start)) s elapsed)"; }

phase "1. environment"
timeout 20 "$PY" - <<'EOF'
import sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}")
if not torch.cuda.is_available():
    sys.exit("CUDA is not available to this torch: run this on a GPU machine")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
EOF
if ! timeout 20 "$PY" -c "import numpy, einops, pytest, hypothesis" 2>/dev/null; then
    torch_version=$("$PY" -c "import torch; print(torch.__version__)")
    echo "installing the project and its test tools next to torch==$torch_version"
    timeout 120 "$PY" -m pip install -q -e . "torch==$torch_version" pytest hypothesis
fi

phase "2. CUDA tests"
tests=(tests/test_local_cuda.py "tests/test_local.py::test_cuda_matches_cpu"
       "tests/test_estimate_inputs.py::test_device_none_uses_cuda_when_present"
       "tests/test_tasks.py::test_sample_on_cuda_from_an_int_seed_or_a_cuda_generator"
       "tests/test_autocast.py::test_dot_scores_stay_float32_under_autocast"
       "tests/test_autocast.py::test_local_infonce_under_autocast_keeps_offset_scores")
if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    tests+=("tests/test_distributed.py::test_two_gpus_with_nccl_equal_one_process")
fi
timeout 110 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" "${tests[@]}" || status=$?
if [ "$status" -ne 0 ]; then echo "CUDA tests: exit status $status"; fi

phase "3. benchmark"
bench=0
timeout 150 "$PY" benchmarks/local_loss.py --gpu --repeats 3 --time-budget 25 || bench=$?
if [ "$bench" -ne 0 ]; then
    echo "benchmark: exit status $bench"
    if [ "$status" -eq 0 ]; then status=$bench; fi
fi

phase "4. estimate_mi"
est=0
timeout 150 "$PY" benchmarks/estimate_gpu.py || est=$?
if [ "$est" -ne 0 ]; then
    echo "estimate_mi: exit status $est"
    if [ "$status" -eq 0 ]; then status=$est; fi
fi

phase "done"
exit "$status"
