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
# One-off CI builds gain nothing from incremental state; it only fills the disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
mkdir -p "$WHARF_CACHE"

say() { echo "== $*" >&2; }

# 1. Debian packages: kcat, Prometheus (prometheus, promtool), socat, curl, openssl.
need_pkgs=()
command -v kcat >/dev/null || need_pkgs+=(kcat)
command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v socat >/dev/null || need_pkgs+=(socat)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v openssl >/dev/null || need_pkgs+=(openssl)
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

logs=$(mktemp -d)
status=0
say "cargo test (fast tests and integration tests)"
set +e
cargo test --workspace --locked -- --include-ignored 2>&1 | tee "$logs/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

say "real-client tests (pytest tests/)"
if ls tests/test_*.py >/dev/null 2>&1; then
    "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$logs/pytest.xml" \
        tests 2>&1 | tee "$logs/pytest.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
set -e

# One closing line over both runners: 'N passed, N failed'.
passed=0; failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
    sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$logs/cargo.log")
for xml in "$logs"/pytest*.xml; do
    [ -f "$xml" ] || continue
    read -r p f < <("$venv/bin/python" - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad)
PY
    )
    passed=$((passed + p)); failed=$((failed + f))
done
if [ "$failed" -gt 0 ] && [ "$status" -eq 0 ]; then status=1; fi
if [ "$status" -ne 0 ]; then say "FAILED (exit $status)"; fi
echo "tests: $passed passed, $failed failed"
exit "$status"
