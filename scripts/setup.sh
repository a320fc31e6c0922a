#!/usr/bin/env bash
# Create .venv and install the project with its test dependencies. Idempotent.
# torch: on this kind of machine the CPU wheel 2.13.0 is pinned first (an unpinned install
# would pull gigabytes of CUDA packages). Set HARNESS_TORCH="" to keep a torch you installed,
# or e.g. HARNESS_TORCH="torch==2.13.0" to choose another spec.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${HARNESS_TORCH-torch==2.13.0}
stamp=.venv/.installed

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && .venv/bin/python -c "import harness, torch, transformers, optuna" 2>/dev/null; then
    exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ -n "$TORCH_SPEC" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "setup: installing $TORCH_SPEC"
    .venv/bin/pip install -q "$TORCH_SPEC" 2>&1 | grep -v "^WARNING: Location" || true
fi
echo "setup: installing the harness and its dependencies into .venv"
.venv/bin/pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import harness, torch, transformers, peft, optuna, hydra, wandb" || { echo "setup: install failed" >&2; exit 1; }
touch "$stamp"
echo "setup: ready (torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
