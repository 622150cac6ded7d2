#!/usr/bin/env bash
# Screenshot a batch in TensorBoard as a reviewer sees it: the custom scalars, time series and HParams pages.
#
#   scripts/tensorboard_screenshots.sh BATCH_DIR OUT_DIR
#
# Starts `clr-rl tensorboard BATCH_DIR` (which writes the arm runs when missing or stale) on a free port,
# waits until it answers and lists the arm runs, then renders each page with headless Chromium
# (Debian's `chromium`, installed with apt-get when missing and we may) into OUT_DIR/{custom_scalars,
# timeseries,hparams}.png at 1600x1200. TensorBoard is stopped on exit, whatever happens.
# Env: CLR_RL (the command, split on spaces; default: clr-rl on PATH), CHROMIUM (default: chromium), WAIT_MS (render budget, default 20000).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BATCH_DIR OUT_DIR" >&2
    exit 2
fi
batch=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
clr_rl=${CLR_RL:-clr-rl}
chromium=${CHROMIUM:-chromium}
wait_ms=${WAIT_MS:-20000}

if ! command -v "$chromium" >/dev/null; then
    echo "installing Debian's chromium (apt-get)" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y chromium >/dev/null; else sudo apt-get install -y chromium >/dev/null; fi
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')
log="$(mktemp)"
$clr_rl tensorboard "$batch" --port "$port" >"$log" 2>&1 &
tb_pid=$!
profile=$(mktemp -d)
cleanup() {
    kill "$tb_pid" 2>/dev/null || true
    wait "$tb_pid" 2>/dev/null || true
    rm -rf "$profile" "$log"
}
trap cleanup EXIT

base="http://localhost:$port"
for _ in $(seq 1 180); do  # up to 90 s: writing the arm runs, then TensorBoard's first load
    if curl -sf "$base/data/runs" 2>/dev/null | grep -q '"arms/'; then
        break
    fi
    if ! kill -0 "$tb_pid" 2>/dev/null; then
        echo "TensorBoard exited:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.5
done
curl -sf "$base/data/runs" | grep -q '"arms/' || { echo "no arm runs listed by $base/data/runs" >&2; cat "$log" >&2; exit 1; }
sleep 2  # let the multiplexer finish its first pass over every run

shoot() {  # page fragment, PNG name
    "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile/$2" --hide-scrollbars --window-size=1600,1200 \
        --virtual-time-budget="$wait_ms" --screenshot="$out/$2.png" "$base/#$1" >/dev/null 2>&1
    echo "wrote $out/$2.png"
}
shoot custom_scalars custom_scalars
shoot timeseries timeseries
shoot hparams hparams
