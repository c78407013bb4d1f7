#!/usr/bin/env bash
# The serving benchmark and the load-and-fault test (docs/benchmarks.md, "Serving"), on loopback.
#
#   tools/serve/bench_serve.sh EXPORT_DIR [SECONDS] [ROUNDS]
#
# EXPORT_DIR is a `cargo xtask export --pytorch` folder; both servers serve it:
#   - ours: `cargo xtask serve --checkpoint EXPORT_DIR` (the dev-profile binary cargo xtask runs);
#   - PyTorch: tools/serve/fastapi_server.py (the export's caption.py behind FastAPI + uvicorn,
#     one image per forward, 2 intra-op threads).
# Each is started, timed to ready (process start to its "ready" line), loaded by 1, 8 and 64
# clients for SECONDS each (real JPEGs from ../shared/data/flickr8k/images, one per request,
# `cargo run -p caption-serve --example load`), its resident memory sampled, then stopped; the two
# alternate for ROUNDS rounds. Then ours alone takes the fault mix: 64 clients for 60 s of good,
# corrupt, oversized, text and stalled requests.
# Needs: cargo build -p xtask -p caption-serve --example load; tools/.venv with
# requirements-torch.txt and tools/serve/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
EXPORT=${1:?usage: tools/serve/bench_serve.sh EXPORT_DIR [SECONDS] [ROUNDS]}
SECONDS_EACH=${2:-20}
ROUNDS=${3:-2}
LOAD=./target/debug/examples/load
IMAGES=../shared/data/flickr8k/images
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

# start NAME PORT COMMAND...: starts a server, waits for its "ready" line, prints the time to it.
start() {
    local name=$1 port=$2
    shift 2
    local began
    began=$(date +%s.%N)
    "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
    echo $! > "$OUT/$name.pid"
    for _ in $(seq 1 600); do
        if grep -q "^ready after" "$OUT/$name.out"; then
            echo "{\"server\": \"$name\", \"startup_to_ready_s\": $(echo "$(date +%s.%N) - $began" | bc)}"
            return
        fi
        sleep 0.05
    done
    echo "$name did not become ready"; cat "$OUT/$name.err"; exit 1
}

stop() {
    kill -INT "$(cat "$OUT/$1.pid")"
    wait "$(cat "$OUT/$1.pid")" || true
}

load() { # NAME PORT CLIENTS [extra flags]
    local name=$1 port=$2 clients=$3
    shift 3
    echo "{\"server\": \"$name\", \"load\": $($LOAD --url "http://127.0.0.1:$port" --images "$IMAGES" \
        --clients "$clients" --seconds "$SECONDS_EACH" --pid "$(cat "$OUT/$name.pid")" "$@")}"
}

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round"
    start caption 8091 ./target/debug/xtask serve --checkpoint "$EXPORT" --port 8091 --device cpu
    for clients in 1 8 64; do load caption 8091 "$clients"; done
    stop caption
    start pytorch 8090 tools/.venv/bin/python tools/serve/fastapi_server.py "$EXPORT" --port 8090 --threads 2
    for clients in 1 8 64; do load pytorch 8090 "$clients"; done
    stop pytorch
done

echo "== faults: 64 clients, 60 s"
start caption 8091 ./target/debug/xtask serve --checkpoint "$EXPORT" --port 8091 --device cpu \
    --body-timeout 2 --max-body-bytes 4000000
SECONDS_EACH=60 load caption 8091 64 --faults --max-body-bytes 4000000 --stall-seconds 2
stop caption
grep -c '"status":200' "$OUT/caption.err" | sed 's/^/log lines with status 200: /'
