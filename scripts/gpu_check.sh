#!/usr/bin/env bash
# The fused scoring model on a lent accelerator (JAX + PyTorch, no TensorFlow, no package index).
#
#   scripts/gpu_check.sh --prepare            # here, once: build/gpu_check/ (fused.keras, reference.npz, photos/,
#                                             # keras wheels; < 64 MiB); needs .venv and the package index
#   scripts/gpu_check.sh [--out PATH] [--batches 64,128,256,512,1024] [--iters 10]
#                                             # on the device, with build/gpu_check carried:
#                                             # JSON to PATH, default $OUT/gpu_check.json
#
# The device run loads build/gpu_check/fused.keras with KERAS_BACKEND=jax in safe mode, checks its
# outputs against the CPU TensorFlow outputs saved by --prepare, and measures photos/s per batch size.
# Exit 0: outputs match within --atol (default 1e-3 at JAX's highest matmul precision); 1: they do not.
# PYTHON picks the interpreter (default: python3). Details: scripts/gpu_check.py, docs/runbook.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
  shift
  PYTHONPATH=src TF_CPP_MIN_LOG_LEVEL=3 exec "${PYTHON:-.venv/bin/python}" scripts/gpu_check.py prepare "$@"
fi

if [[ ! -f build/gpu_check/manifest.json ]]; then
  echo "gpu_check: build/gpu_check/ is missing: run 'scripts/gpu_check.sh --prepare' first and carry build/gpu_check" >&2
  exit 2
fi
PY="${PYTHON:-python3}"
"$PY" - <<'PYCHECK' || { echo "gpu_check: $PY has no jax: run it with the device's Python (PYTHON=...)" >&2; exit 2; }
import jax  # noqa: F401
PYCHECK
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
KERAS_BACKEND=jax exec "$PY" scripts/gpu_check.py run "$@"
