#!/usr/bin/env bash
# Command 2 of the README: install what the tests need (Debian packages, a
# virtualenv with the real Python clients, LocalStack in its own
# virtualenv), start LocalStack, run every test (the Rust workspace with its
# integration tests, then the real-client tests under tests/), and stop what
# it started, also when a test fails.
#
# Re-runs reuse ~/.cache/wharf (virtualenvs) and $CARGO_TARGET_DIR
# (default ~/.cache/wharf-target).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export WHARF_CACHE=${WHARF_CACHE:-$HOME/.cache/wharf}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
mkdir -p "$WHARF_CACHE"

say() { echo "== $*" >&2; }

# 1. Debian packages: kcat, Prometheus (prometheus, promtool), socat, curl.
need_pkgs=()
command -v kcat >/dev/null || need_pkgs+=(kcat)
command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v socat >/dev/null || need_pkgs+=(socat)
command -v curl >/dev/null || need_pkgs+=(curl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing Debian packages: ${need_pkgs[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# 2. The Python clients the tests drive.
venv=$WHARF_CACHE/test-venv
if ! [ -f "$venv/.installed" ] || ! cmp -s scripts/requirements-test.txt "$venv/.installed"; then
    say "installing the Python test clients into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r scripts/requirements-test.txt
    cp scripts/requirements-test.txt "$venv/.installed"
fi

# 3. Build first, so the services below do not wait on the compiler.
say "building the workspace"
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3

# 4. LocalStack, stopped again however this script ends.
localstack/localstack.sh install
if localstack/localstack.sh status >/dev/null 2>&1; then
    say "LocalStack is already running; leaving it running afterwards"
    localstack/localstack.sh init
else
    trap 'localstack/localstack.sh stop' EXIT
    localstack/localstack.sh start
fi
eval "$(localstack/localstack.sh env)"
export WHARF_BIN_DIR=$CARGO_TARGET_DIR/debug
export PATH=$venv/bin:$PATH

status=0
say "cargo test (fast tests and integration tests)"
cargo test --workspace --locked -- --include-ignored || status=$?

say "real-client tests (pytest tests/)"
if ls tests/test_*.py >/dev/null 2>&1; then
    "$venv/bin/python" -m pytest -q tests || status=$?
else
    say "no real-client tests yet"
fi

if [ "$status" -ne 0 ]; then say "FAILED (exit $status)"; else say "all tests passed"; fi
exit "$status"
