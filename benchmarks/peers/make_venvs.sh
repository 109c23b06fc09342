#!/usr/bin/env bash
# Make one virtual environment per peer library, next to this script:
#   benchmarks/peers/.venv-bmi        benchmark-mi (JAX)        -> run_bmi.py
#   benchmarks/peers/.venv-torch-mist torch-mist (PyTorch)      -> run_torch_mist.py
# Each venv gets torch 2.13 first (the CPU wheel), then the peer, then the pins the peer
# needs to import.  A peer whose install fails is recorded in .venv-<peer>.failed so the
# comparison reports it as skipped.
#
# Usage: bash benchmarks/peers/make_venvs.sh [bmi] [torch-mist]     (default: both)
# Env:   PYTHON (interpreter for the venvs, default python3)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
    echo "make_venvs.sh: no Python interpreter '$python' on PATH; set PYTHON=/path/to/python3" >&2
    exit 1
fi
peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(bmi torch-mist)

install_peer() {
    local name="$1"; shift
    local venv="$here/.venv-$name"
    rm -f "$venv.failed"
    echo "== $name: creating $venv"
    "$python" -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install --quiet --upgrade pip || return 1
    "$venv/bin/python" -m pip install --quiet "torch==2.13.0" || return 1
    "$@" "$venv/bin/python" || return 1
    echo "== $name: ok"
}

bmi_packages() {
    "$1" -m pip install --quiet benchmark-mi &&
    "$1" -m pip install --quiet "jax==0.4.30" "jaxlib==0.4.30" &&
    "$1" -c "import bmi, jax; print('bmi', bmi.__version__ if hasattr(bmi, '__version__') else '?', 'jax', jax.__version__)"
}

torch_mist_packages() {
    "$1" -m pip install --quiet torch-mist "numpy<2" "pandas<2.3" &&
    "$1" -c "import torch_mist, torch, numpy; print('torch_mist ok, torch', torch.__version__, 'numpy', numpy.__version__)"
}

status=0
for peer in "${peers[@]}"; do
    case "$peer" in
        bmi) install_peer bmi bmi_packages ;;
        torch-mist) install_peer torch-mist torch_mist_packages ;;
        *) echo "unknown peer: $peer (expected bmi or torch-mist)" >&2; status=2; continue ;;
    esac
    if [ $? -ne 0 ]; then
        echo "== $peer: install FAILED; it will be reported as skipped" >&2
        date -u +"install failed %Y-%m-%dT%H:%M:%SZ" > "$here/.venv-$peer.failed"
        status=1
    fi
done
exit $status
