#!/usr/bin/env bash
# bmi's estimators on the Beyond Normal samples (sample_bmi_tasks.py --benchmark), one
# process, one thread, resumable: re-running it skips the cases already in the results file.
#   0. draws the samples if missing (sample_bmi_tasks.py --benchmark; keeps existing files);
#   1. KSG and CCA on every sample (seconds each);
#   2. the neural estimators (InfoNCE, NWJ, DV, MINE) on seed 0 of every task, one task of
#      each family in turn (--interleave);
#   3. the neural estimators on seeds 1 and 2.
# If the run has to be stopped, the results file holds whole stages first.
# Usage: bash benchmarks/peers/run_bmi_beyond_normal.sh [DATA_DIR] [OUT_JSON]
# Needs bmi's venv (bash benchmarks/peers/make_venvs.sh bmi); without it, exits 1 saying so.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${1:-$here/data/beyond_normal}"
out="${2:-$here/../results/beyond_normal_bmi.json}"
py="$here/.venv-bmi/bin/python"
# say what is missing and how to make it (bash alone says "No such file or directory", 127)
if [ -e "$here/.venv-bmi.failed" ]; then
    echo "run_bmi_beyond_normal.sh: bmi's virtual environment is incomplete: its install" \
         "failed ($here/.venv-bmi.failed)." >&2
    echo "Make it again: bash benchmarks/peers/make_venvs.sh bmi" >&2
    exit 1
elif [ ! -x "$py" ]; then
    echo "run_bmi_beyond_normal.sh: bmi's virtual environment is missing (no $py)." >&2
    echo "Make it first: bash benchmarks/peers/make_venvs.sh bmi" >&2
    exit 1
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 JAX_PLATFORMS=cpu
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"$py" "$here/sample_bmi_tasks.py" --benchmark --out-dir "$data"
"$py" "$here/run_bmi.py" --resume --out "$out" --estimators ksg,cca "$data"/*.npz
"$py" "$here/run_bmi.py" --resume --interleave --out "$out" --estimators infonce,nwj,dv,mine \
    "$data"/*-s0.npz
"$py" "$here/run_bmi.py" --resume --interleave --out "$out" --estimators infonce,nwj,dv,mine \
    "$data"/*-s1.npz "$data"/*-s2.npz
