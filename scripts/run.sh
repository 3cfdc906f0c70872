#!/usr/bin/env bash
# Installs what is needed, builds, and runs jube-amqp in the foreground.
#
# Without AMQPUri in the environment it starts a private RabbitMQ node for the session, with
# RabbitMQ's management UI, and binds the queue jubeAnswers to jubeOutbound for the answers; once
# the service consumes, it prints how to send the sample transaction and read its answer. Without
# JUBE_URL it starts the stand-in Jube. Arguments are passed to jube-amqp (see --help).
# Ctrl-C (or the terminal going away) stops the service gracefully, then whatever this script
# started.
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
helper_pid=
answers=jubeAnswers
cleanup() {
    if [ -n "$helper_pid" ]; then
        kill "$helper_pid" 2>/dev/null || true
    fi
    if [ -n "$stub_pid" ]; then
        kill "$stub_pid" 2>/dev/null || true
    fi
    if [ "$started_broker" = 1 ]; then
        echo "run.sh: stopping the local RabbitMQ node" >&2
        bash scripts/broker.sh stop "$state/broker" || true
    fi
}
trap cleanup EXIT

service_args=()
if [ -z "${AMQPUri:-}" ]; then
    # A node an earlier run left behind (killed before it could clean up) goes first.
    if [ -f "$state/broker/broker.pid" ] && kill -0 "$(cat "$state/broker/broker.pid")" 2>/dev/null; then
        echo "run.sh: stopping the RabbitMQ node an earlier run left in $state/broker" >&2
        bash scripts/broker.sh stop "$state/broker" || true
    fi
    echo "run.sh: no AMQPUri given; starting a local RabbitMQ node (files in $state/broker)" >&2
    port=$(JA_BROKER_MANAGEMENT=1 bash scripts/broker.sh start "$state/broker")
    started_broker=1
    export AMQPUri="amqp://guest:guest@127.0.0.1:$port/"
    # Answers go to a fanout exchange: bind a queue, or a transaction sent by hand is answered
    # into nowhere. (A later --outbound-queue in the arguments wins.)
    service_args=(--outbound-queue "$answers")
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

# How to try it, once the service consumes: printed only for the node this script started.
show_how_to_try_it() {
    # amqp-tools read URIs by the AMQP URI spec, where a bare trailing '/' is the empty vhost.
    local inbound=jubeInbound url=${AMQPUri%/}/%2F
    for _ in $(seq 1 300); do
        if bash scripts/broker.sh ctl "$state/broker" list_queues name consumers --no-table-headers -q 2>/dev/null |
            awk -v q="$inbound" '$1 == q && $2 > 0 {found=1} END {exit !found}'; then
            break
        fi
        sleep 0.2
    done
    # shellcheck disable=SC1091
    . "$state/broker/broker.env"
    cat >&2 <<TRY

run.sh: jube-amqp is consuming '$inbound'; answers go to exchange 'jubeOutbound' and the queue '$answers'.
  Management UI: http://127.0.0.1:$JA_TEST_MANAGEMENT_PORT/ (login guest / guest)
  Send the sample transaction (from another terminal, in $(pwd)):
    amqp-publish --url $url -r $inbound -p -C application/json -H "EntityAnalysisModelGuid: 90c425fd-101a-420b-91d1-cb7a24a969cc" -b "\$(cat tests/data/sample_transaction.json)"
  Read its answer:
    amqp-get --url $url -q $answers

TRY
}

# In a session of its own, so that Ctrl-C reaches only this script, which passes on one SIGTERM
# (a second signal would make the service stop at once).
setsid build/release/jube-amqp "${service_args[@]}" "$@" &
service=$!
trap 'kill -TERM "$service" 2>/dev/null || true' INT TERM HUP
if [ "$started_broker" = 1 ]; then
    show_how_to_try_it &
    helper_pid=$!
fi
status=0
while :; do
    wait "$service" && status=0 || status=$?
    kill -0 "$service" 2>/dev/null || break
done
exit "$status"
