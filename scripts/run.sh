#!/usr/bin/env bash
# Installs what is needed, builds, and runs jube-amqp in the foreground.
#
# Without AMQPUri in the environment it starts a private RabbitMQ node for the session; without
# JUBE_URL it starts the stand-in Jube. Arguments are passed to jube-amqp (see --help).
# Ctrl-C stops the service gracefully, then whatever this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${JA_SKIP_INSTALL:-0}" != 1 ]; then
    bash scripts/install-deps.sh
fi
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j2 --target jube-amqp jube-stub >/dev/null

state=.run
mkdir -p "$state"
started_broker=0
stub_pid=
cleanup() {
    if [ -n "$stub_pid" ]; then
        kill "$stub_pid" 2>/dev/null || true
    fi
    if [ "$started_broker" = 1 ]; then
        echo "run.sh: stopping the local RabbitMQ node" >&2
        bash scripts/broker.sh stop "$state/broker" || true
    fi
}
trap cleanup EXIT

if [ -z "${AMQPUri:-}" ]; then
    echo "run.sh: no AMQPUri given; starting a local RabbitMQ node (files in $state/broker)" >&2
    port=$(bash scripts/broker.sh start "$state/broker")
    started_broker=1
    export AMQPUri="amqp://guest:guest@127.0.0.1:$port/"
fi
if [ -z "${JUBE_URL:-}" ]; then
    build/release/jube-stub --port 0 >"$state/stub.out" 2>"$state/stub.err" &
    stub_pid=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on' "$state/stub.out" 2>/dev/null && break
        sleep 0.05
    done
    stub_address=$(sed -n 's/^listening on //p' "$state/stub.out")
    [ -n "$stub_address" ] || { echo "run.sh: the stand-in Jube did not start" >&2; exit 1; }
    echo "run.sh: no JUBE_URL given; the stand-in Jube listens on $stub_address" >&2
    export JUBE_URL="http://$stub_address"
fi
echo "run.sh: jube-amqp consumes from $AMQPUri (password shown as *** in its log)" >&2

# In a session of its own, so that Ctrl-C reaches only this script, which passes on one SIGTERM
# (a second signal would make the service stop at once).
setsid build/release/jube-amqp "$@" &
service=$!
trap 'kill -TERM "$service" 2>/dev/null || true' INT TERM
status=0
while :; do
    wait "$service" && status=0 || status=$?
    kill -0 "$service" 2>/dev/null || break
done
exit "$status"
