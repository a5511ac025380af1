#!/usr/bin/env bash
# Create .venv and install hjsym with its test extras, the experiments' extras (scikit-learn, dask, POT) and the adapters'
# (transformers, mambapy), pinned to the torch already installed (packages that depend on torch must not replace it).
# On a machine without an NVIDIA GPU it installs a CPU build of torch (the default PyPI wheel
# on Linux is a multi-GB CUDA build). Idempotent: a second run only checks the installation.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "setup: NVIDIA GPU found: installing torch from PyPI (CUDA build)"
        "$VPY" -m pip install --quiet "torch>=2.2"
    else
        echo "setup: no GPU: installing a CPU build of torch"
        # The PyTorch CPU index where it is reachable; otherwise a pinned release (which
        # machines with a local wheel cache serve as a CPU build).
        "$VPY" -m pip install --quiet --retries 0 --timeout 20 --index-url https://download.pytorch.org/whl/cpu "torch>=2.2" 2>/dev/null \
            || "$VPY" -m pip install --quiet "torch==2.13.0"
    fi
fi
TORCH_PIN="torch==$("$VPY" -c 'import torch; print(torch.__version__.split("+")[0])')"
"$VPY" -m pip install --quiet "$TORCH_PIN" -e ".[test,experiments,dask,ot,adapters,notebook]"
echo "setup: $("$VPY" -c 'import torch, sympy; print(f"torch {torch.__version__}, sympy {sympy.__version__}")')"
