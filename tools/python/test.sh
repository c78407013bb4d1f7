#!/usr/bin/env bash
# The Python package's tests (run by tools/test.sh after `cargo test`): builds the wheel of
# crates/caption-py with maturin, installs it into a virtual environment holding the pinned
# reference libraries (tools/python/requirements.txt), type-checks the package with mypy, and runs
# pytest against pycocoevalcap, nltk, sacrebleu, spaCy and `cargo xtask caption`.
# CAPTION_PY_VENV names the environment (default tools/.venv, created where missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=${CAPTION_PY_VENV:-tools/.venv}
target=${CARGO_TARGET_DIR:-target}
wheels="$target/python-wheels"

if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv"
    python3 -m venv "$venv"
fi
echo "== pip install -r tools/python/requirements.txt"
"$venv/bin/pip" install -q --disable-pip-version-check -r tools/python/requirements.txt

echo "== building the wheel (maturin)"
# The captioner's tests compare with `cargo xtask caption`: the binary `cargo test --workspace`
# built (building it alone would resolve features differently and rebuild much of the tree).
[ -x "$target/debug/xtask" ] || cargo build -q -p xtask
mkdir -p "$wheels"
rm -f "$wheels"/caption-*.whl
if ! "$venv/bin/maturin" build -m crates/caption-py/Cargo.toml --out "$wheels" > "$wheels/build.log" 2>&1; then
    cat "$wheels/build.log"
    exit 1
fi
grep "Built wheel" "$wheels/build.log"
wheel=$(ls "$wheels"/caption-*.whl)
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

echo "== mypy --strict"
(cd crates/caption-py/python && "$root/$venv/bin/python" -m mypy --strict caption)

echo "== pytest (the installed wheel, from outside the source tree)"
cd /tmp
"$root/$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/crates/caption-py/tests"
