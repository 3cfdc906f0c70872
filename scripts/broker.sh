#!/usr/bin/env bash
# A private RabbitMQ node for tests, benchmarks and local runs.
#
# It has its own node name, port and data directory, so it never collides with a
# broker already running on the machine (the Debian package starts one on 5672).
#
#   scripts/broker.sh start DIR [PORT]   start a node whose files live in DIR; prints the port
#   scripts/broker.sh fresh DIR [PORT]   the same, first forgetting every queue a node in DIR
#                                        ever had (test suites start from nothing)
#   scripts/broker.sh stop DIR           stop the node started in DIR
#   scripts/broker.sh kill DIR           kill the node's VM at once (a crash, for fault tests)
#   scripts/broker.sh ctl DIR ARGS...    run rabbitmqctl against that node
#
# DIR/broker.env is written on start: JA_TEST_AMQP_PORT=..., JA_TEST_TLS_PORT=... and
# JA_TEST_NODE=.... With JA_BROKER_MANAGEMENT=1 (remembered for later starts of the same DIR) the
# node also serves RabbitMQ's management UI and HTTP API on 127.0.0.1, port JA_TEST_MANAGEMENT_PORT
# (the AMQP port plus 200), login guest/guest. Without PORT the node takes the first free port
# from JA_BROKER_PORT_HINT (20100 unless set) on. JA_BROKER_NO_BUSY_WAIT=1 (remembered too) keeps
# its schedulers from spinning while idle, for nodes that share the machine's cores;
# JA_BROKER_CLASSIC_V2=1 (remembered) makes new classic queues version 2, as on RabbitMQ 4.x. Every node has the consistent-hash exchange (for
# the partitioning recipe in README.md) and also listens for amqps:// on JA_TEST_TLS_PORT (the AMQP
# port plus 100, on 127.0.0.1) with the certificates scripts/tls-certs.sh makes in DIR/tls: its
# certificate is for the host name localhost, and it requires a client certificate from the same
# CA.
set -euo pipefail

command=${1:?usage: broker.sh start|fresh|stop|kill|ctl DIR [ARGS]}
dir=${2:?usage: broker.sh start|fresh|stop|kill|ctl DIR [ARGS]}
shift 2

if [ "$command" = fresh ]; then
    rm -rf "$dir/mnesia" "$dir/feature_flags"
    command=start
fi

port_in_use() {
    # /proc/net/tcp lists listening sockets (state 0A) with the port in hex.
    local hex
    hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: [0-9A-F]+:${hex} [0-9A-F]+:[0-9A-F]+ 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pick_port() {
    # The Erlang distribution port is the AMQP port plus 20000, and rabbitmqctl takes ports
    # from the AMQP port plus 30000, so a node port must stay below 35535 and clear of
    # 35672 (where the CLI tools of a default node live). Nodes started side by side (the test
    # suite's) must not take the same free port before either listens on it: a port is claimed
    # under a lock (a file in the claims directory, good for two minutes, by then the node
    # listens), and the search starts at JA_BROKER_PORT_HINT.
    local port hint=${JA_BROKER_PORT_HINT:-20100}
    local claims=${TMPDIR:-/tmp}/jube-amqp-port-claims
    mkdir -p "$claims"
    exec 9>"$claims/.lock"
    flock 9
    find "$claims" -name 'port-*' -mmin +2 -delete 2>/dev/null || true
    for port in $(seq "$hint" 20199) $(seq 20100 $((hint - 1))); do
        if [ ! -e "$claims/port-$port" ] && ! port_in_use "$port" &&
            ! port_in_use $((port + 20000)) && ! port_in_use $((port + 100)) &&
            ! port_in_use $((port + 200)); then
            touch "$claims/port-$port"
            flock -u 9
            echo "$port"
            return 0
        fi
    done
    flock -u 9
    echo "broker.sh: no free port pair in 20100..20199 (+20000)" >&2
    return 1
}

node_of() {
    # shellcheck disable=SC1091
    . "$1/broker.env"
    echo "$JA_TEST_NODE"
}

ctl() {
    local node=$1
    shift
    RABBITMQ_NODENAME=$node rabbitmqctl -n "$node" "$@"
}

case "$command" in
start)
    port=${1:-$(pick_port)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    # The wrapper runs the broker as the rabbitmq user, which must reach DIR. Directories of the
    # project's own are made traversable; nothing outside it is changed: when a directory there
    # blocks the way, the node's files live under /tmp instead, and DIR becomes a link to them.
    project=$(cd "$(dirname "$0")/.." && pwd -P)
    d=$dir
    while [ "$d" != "/" ] && [ "${d#"$project"}" != "$d" ]; do
        chmod o+x "$d" 2>/dev/null || true
        d=$(dirname "$d")
    done
    if ! runuser -u rabbitmq -- test -x "$dir" 2>/dev/null; then
        given=$dir
        dir=${TMPDIR:-/tmp}/jube-amqp-node-$(printf '%s' "$given" | sha1sum | cut -c1-16)
        mkdir -p "$dir"
        cp -a "$given"/. "$dir"/
        rm -rf "$given"
        ln -s "$dir" "$given"
        echo "broker.sh: the rabbitmq user cannot reach $given; its files live in $dir" >&2
    fi
    node="jubeamqp$port@localhost"
    mkdir -p "$dir/mnesia" "$dir/log"
    if [ "${JA_BROKER_MANAGEMENT:-0}" = 1 ]; then
        touch "$dir/management"
    fi
    # Nodes that share two cores with other nodes (the suite runs several side by side) do not
    # spin their schedulers waiting for work, which Erlang does by default.
    if [ "${JA_BROKER_NO_BUSY_WAIT:-0}" = 1 ]; then
        touch "$dir/no-busy-wait"
    fi
    if [ -f "$dir/no-busy-wait" ]; then
        export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
    fi
    management_port=
    if [ -f "$dir/management" ]; then
        management_port=$((port + 200))
        echo "[rabbitmq_management,rabbitmq_consistent_hash_exchange]." >"$dir/enabled_plugins"
    else
        echo "[rabbitmq_consistent_hash_exchange]." >"$dir/enabled_plugins"
    fi
    tls_port=$((port + 100))
    # A restarted node keeps its certificates, as a real one would.
    [ -f "$dir/tls/server.pem" ] || bash "$(dirname "$0")/tls-certs.sh" "$dir/tls"
    cat >"$dir/rabbitmq.conf" <<CONF
listeners.ssl.1 = 127.0.0.1:$tls_port
ssl_options.cacertfile = $dir/tls/ca.pem
ssl_options.certfile = $dir/tls/server.pem
ssl_options.keyfile = $dir/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
CONF
    if [ -n "$management_port" ]; then
        printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$management_port" \
            >>"$dir/rabbitmq.conf"
    fi
    if [ "${JA_BROKER_CLASSIC_V2:-0}" = 1 ]; then
        touch "$dir/classic-v2"
    fi
    if [ -f "$dir/classic-v2" ]; then
        # Classic queues of version 2, the only version RabbitMQ 4.x has (3.10 defaults to 1).
        echo 'classic_queue.default_version = 2' >>"$dir/rabbitmq.conf"
    fi
    chown -R rabbitmq:rabbitmq "$dir"
    printf 'JA_TEST_AMQP_PORT=%s\nJA_TEST_TLS_PORT=%s\nJA_TEST_NODE=%s\nJA_TEST_MANAGEMENT_PORT=%s\n' \
        "$port" "$tls_port" "$node" "$management_port" >"$dir/broker.env"
    export RABBITMQ_NODENAME=$node
    export RABBITMQ_NODE_PORT=$port
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_DIST_PORT=$((port + 20000))
    export RABBITMQ_MNESIA_BASE=$dir/mnesia
    export RABBITMQ_LOG_BASE=$dir/log
    export RABBITMQ_PID_FILE=$dir/broker.pid
    export RABBITMQ_FEATURE_FLAGS_FILE=$dir/feature_flags
    export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
    export RABBITMQ_CONFIG_FILE=$dir/rabbitmq
    setsid rabbitmq-server >"$dir/log/server.out" 2>&1 </dev/null &
    server=$!
    # Wait for the AMQP listener (a look at /proc, nearly free) before asking rabbitmqctl: each
    # rabbitmqctl call boots an Erlang VM, a second or more of CPU, and await_startup fails at
    # once while the node is not yet registered. Give up when the server process has died or
    # after about two minutes.
    started=0
    for _ in $(seq 1 1200); do
        port_in_use "$port" && break
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    for _ in $(seq 1 10); do
        if ctl "$node" await_startup --timeout 60 >/dev/null 2>&1; then
            started=1
            break
        fi
        kill -0 "$server" 2>/dev/null || break
        sleep 1
    done
    if [ "$started" != 1 ]; then
        echo "broker.sh: node $node did not start; last lines of its log:" >&2
        tail -n 30 "$dir/log/server.out" >&2 || true
        exit 1
    fi
    echo "$port"
    ;;
stop)
    [ -f "$dir/broker.env" ] || exit 0
    node=$(node_of "$dir")
    timeout 60 rabbitmqctl -n "$node" stop >/dev/null 2>&1 || true
    if [ -f "$dir/broker.pid" ]; then
        kill -9 "$(cat "$dir/broker.pid")" 2>/dev/null || true
    fi
    ;;
kill)
    # shellcheck disable=SC1091
    . "$dir/broker.env"
    kill -9 "$(cat "$dir/broker.pid")"
    for _ in $(seq 1 200); do
        port_in_use "$JA_TEST_AMQP_PORT" || exit 0
        sleep 0.05
    done
    echo "broker.sh: port $JA_TEST_AMQP_PORT still open 10 s after the kill" >&2
    exit 1
    ;;
ctl)
    ctl "$(node_of "$dir")" "$@"
    ;;
*)
    echo "broker.sh: unknown command '$command' (start, fresh, stop, kill or ctl)" >&2
    exit 2
    ;;
esac
