#!/usr/bin/env bash
# Run the CUDA tests and a graded batch on a GPU machine; prints the figures the README quotes.
# Usage: bash benchmarks/cuda_check.sh   (needs `make setup` done, or a venv with the kit)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PATH="$(dirname "$PY"):$PATH"
out="${TMPDIR:-/tmp}/ptgrade-gpu-batch"
date -u +"date: %Y-%m-%d %H:%M UTC"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
"$PY" -c "import tempfile, pathlib; from grader.sandbox.isolation import plan; print('confinement:', plan(pathlib.Path(tempfile.gettempdir())).describe())"
start=$(date +%s)
"$PY" -m pytest -q -m cuda tests/test_cuda.py -n "${JOBS:-4}"
echo "cuda tests: $(( $(date +%s) - start )) s"
rm -rf "$out"
start=$(date +%s)
"$PY" -m grader.cli batch samples/ --output "$out" --timeout 60
echo "graded batch of samples on the GPU: $(( $(date +%s) - start )) s"
# What each submission's code ran on ("cuda": the GPU itself), and how long its grade took.
"$PY" - "$out" <<'PYTHON'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1], "results").glob("*.json")):
    result = json.loads(path.read_text())
    execution = result.get("execution", {})
    print(f"{path.stem:60} {result.get('score')}/{result.get('max_score')}  "
          f"ran on {execution.get('device')}  {execution.get('seconds')} s")
PYTHON
