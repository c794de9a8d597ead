#!/usr/bin/env bash
# LocalStack for Wharf's tests: install into a virtualenv, start, wait until
# healthy, create what the tests use, stop by pid.
#
#   localstack/localstack.sh install   # virtualenv with the pinned LocalStack
#   localstack/localstack.sh start     # start on $LOCALSTACK_PORT (4566), wait, init
#   localstack/localstack.sh stop      # stop what start started
#   localstack/localstack.sh status    # healthy or not
#   localstack/localstack.sh env       # print the variables tests need (eval it)
#
# State (venv, pid, logs, the KMS key ARN) lives under $WHARF_CACHE
# (default ~/.cache/wharf), outside the clone, so a later run reuses it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${WHARF_CACHE:-$HOME/.cache/wharf}
venv=$cache/localstack-venv
state=$cache/localstack-state
port=${LOCALSTACK_PORT:-4566}
endpoint=http://127.0.0.1:$port
pidfile=$state/localstack.pid
logfile=$state/localstack.log
keyfile=$state/kms-key-arn

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=$AWS_REGION

log() { echo "localstack: $*" >&2; }

install() {
    local stamp=$venv/.installed
    if [ -f "$stamp" ] && cmp -s "$here/requirements.txt" "$stamp"; then
        return 0
    fi
    log "installing LocalStack into $venv (a few minutes, once)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
}

healthy() {
    curl -fsS "$endpoint/_localstack/health" 2>/dev/null | grep -q '"s3": "\(available\|running\)"'
}

start() {
    install
    mkdir -p "$state"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && healthy; then
        log "already running (pid $(cat "$pidfile")) on $endpoint"
        init
        return 0
    fi
    log "starting on $endpoint (log: $logfile)"
    (
        cd "$state"
        GATEWAY_LISTEN=127.0.0.1:$port \
        SERVICES=s3,logs,cloudwatch,firehose,kms,sts,iam \
        LOCALSTACK_VOLUME_DIR=$state/volume \
        SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
        setsid "$venv/bin/python" -m localstack.runtime.main >"$logfile" 2>&1 &
        echo $! >"$pidfile"
    )
    local i
    for i in $(seq 1 180); do
        if healthy; then
            log "healthy after ${i}s"
            init
            return 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "exited during start; last lines of $logfile:"
            tail -20 "$logfile" >&2
            return 1
        fi
        sleep 1
    done
    log "not healthy after 180 s; last lines of $logfile:"
    tail -20 "$logfile" >&2
    return 1
}

stop() {
    if [ -f "$pidfile" ]; then
        local pid
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping pid $pid"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    fi
}

aws_py() {
    # boto3 ships with localstack-core; use it rather than a second install.
    "$venv/bin/python" - "$@"
}

# What tests and example configs use: buckets, log groups, a KMS key.
init() {
    aws_py "$endpoint" "$keyfile" <<'PY'
import sys, boto3
endpoint, keyfile = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1")
s3 = boto3.client("s3", **kw)
for b in ("wharf-test", "wharf-logs", "wharf-firehose", "wharf-dead-letter"):
    try:
        s3.create_bucket(Bucket=b)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
logs = boto3.client("logs", **kw)
for g in ("/wharf/test", "/wharf/audit"):
    try:
        logs.create_log_group(logGroupName=g)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
kms = boto3.client("kms", **kw)
aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
arns = []
for alias in ("alias/wharf-test", "alias/wharf-test-2"):
    if aliases.get(alias):
        arn = kms.describe_key(KeyId=aliases[alias])["KeyMetadata"]["Arn"]
    else:
        arn = kms.create_key(Description=f"wharf tests ({alias})")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    arns.append(arn)
open(keyfile, "w").write(arns[0] + "\n")
open(keyfile + "-2", "w").write(arns[1] + "\n")
PY
    log "initialised (KMS key $(cat "$keyfile"))"
}

env_vars() {
    echo "export AWS_ENDPOINT_URL=$endpoint"
    echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    echo "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    echo "export AWS_REGION=$AWS_REGION"
    echo "export AWS_DEFAULT_REGION=$AWS_REGION"
    echo "export WHARF_LOCALSTACK=$endpoint"
    [ -f "$keyfile" ] && echo "export WHARF_TEST_KMS_KEY_ARN=$(cat "$keyfile")"
    [ -f "$keyfile-2" ] && echo "export WHARF_TEST_KMS_KEY_ARN_2=$(cat "$keyfile-2")"
    return 0
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    init) init ;;
    status) if healthy; then echo "healthy on $endpoint"; else echo "not running on $endpoint"; exit 1; fi ;;
    env) env_vars ;;
    *) echo "usage: $0 install|start|stop|status|init|env" >&2; exit 2 ;;
esac
