#!/usr/bin/env bash
# The packed Python environment that executors run in on standalone and YARN clusters (`make pack-env`):
#
#   spark-submit --archives dist/fleetvision-env.tar.gz#env --conf spark.pyspark.python=./env/bin/python ...
#
# Spark's Python package management guide, "Using Virtualenv": the wheel and its pinned dependencies go
# into a fresh venv, which venv-pack packs. The archive's bin/python is a link to the interpreter that
# made the venv (not a copy), so every node needs Python 3.11 at that same path (--python-prefix of
# venv-pack rewrites the link for nodes that have it elsewhere). Kubernetes uses the Docker image instead.
#
#   scripts/pack_env.sh [--out FILE] [--work DIR] [--deps-from SITE_PACKAGES]
#
# --deps-from: take the dependencies from an existing environment (its site-packages appended to sys.path)
# instead of installing them from the package index: seconds instead of minutes, and only for one machine
# (every worker must see that folder); tests/test_cluster_submit.py uses it. The wheel is always installed.
# Environment: PYTHON (the interpreter for the venv, default python3.11), VENV_PACK (default .venv/bin/venv-pack),
# BUILD_PYTHON (builds the wheel, default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

out="dist/fleetvision-env.tar.gz"
work="build/pack-env"
deps_from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --deps-from) deps_from="$2"; shift 2 ;;
    *) echo "pack_env.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV_PACK="${VENV_PACK:-.venv/bin/venv-pack}"
BUILD_PYTHON="${BUILD_PYTHON:-.venv/bin/python}"

rm -rf "$work"
mkdir -p "$work/source" "$work/wheel" "$(dirname "$out")"
# the wheel, built from a copy of the sources (an in-place build would reuse build/lib, where modules
# deleted since stay); the link resources/starter -> models/starter is followed, so the models go inside
tar --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md src models | tar -C "$work/source" -xf -
"$BUILD_PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index \
  -w "$work/wheel" "$work/source"
wheel=$(ls "$work"/wheel/fleetvision-*.whl)
"$PYTHON" -m venv "$work/venv"
if [ -n "$deps_from" ]; then
  site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # appended after the venv's own site-packages, and without running that folder's .pth files: the wheel's
  # copy of the package is the one imported, never an editable install there (venv-pack refuses a .pth
  # naming a folder outside the venv: it takes it for an editable install)
  printf 'import sys\nsys.path.append(%s)\n' "$("$work/venv/bin/python" -c 'import sys; print(repr(sys.argv[1]))' "$deps_from")" \
    > "$site/sitecustomize.py"
  "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-index "$wheel"
else
  "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "pip==26.3"
  "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
fi
# level 1: the archive is written once per build and read once per executor; tighter gzip saves little
"$VENV_PACK" --prefix "$work/venv" --output "$out" --compress-level 1 --force --quiet
chmod 0644 "$out"  # venv-pack writes it 0600; executors may run as another user
echo "packed $(du -h "$out" | cut -f1) into $out ($(basename "$wheel"))"
