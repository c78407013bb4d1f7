#!/usr/bin/env bash
# The tests (the README's test command; CI runs it after fmt and clippy, see .ci/run).
# The report test opens the HTML report in headless Chromium: Debian's `chromium` is installed
# here where missing (as root, or with sudo). CHROMIUM=/path/to/chrome names another browser.
# Extra arguments go to `cargo test`. Then the Python package's build and pytest suite
# (tools/python/test.sh: a virtual environment with pinned requirements, maturin, pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

have_browser() {
    [ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
        || command -v google-chrome >/dev/null
}
if ! have_browser; then
    echo "== installing Debian's chromium for the report test"
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium
fi

cargo test --workspace "$@"

echo "== the Python package (tools/python/test.sh)"
tools/python/test.sh
