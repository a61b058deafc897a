#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu): Python,
# bubblewrap (the confinement that hides the solutions from the student's code) and the
# kit's dependencies at the versions it was bundled with. The kit itself is kit/grader.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --no-cache-dir \
    --extra-index-url https://download.pytorch.org/whl/cpu \
    -r /autograder/source/requirements.txt
