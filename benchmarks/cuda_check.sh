#!/usr/bin/env bash
# Run the CUDA tests and a graded batch on a GPU machine; prints the figures the README quotes.
# Usage: bash benchmarks/cuda_check.sh   (needs `make setup` done, or a venv with the kit)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PATH="$(dirname "$PY"):$PATH"
date -u +"date: %Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
start=$(date +%s)
"$PY" -m pytest -q -m cuda tests/test_cuda.py
echo "cuda tests: $(( $(date +%s) - start )) s"
start=$(date +%s)
"$PY" -m grader.cli batch samples/ --output "${TMPDIR:-/tmp}/ptgrade-gpu-batch" --timeout 60
echo "graded batch of samples on the GPU: $(( $(date +%s) - start )) s"
