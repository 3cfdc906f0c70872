#!/usr/bin/env bash
# A local three-node RabbitMQ cluster for tests and experiments, built from scripts/broker.sh
# nodes: each has its own node name, AMQP port and data directory under DIR/node1..3.
#
#   scripts/cluster.sh start DIR         start three fresh nodes and cluster them (node 1 first);
#                                        prints the comma-separated AMQP URIs; a cluster DIR
#                                        already runs with its three nodes up is used as it is
#   scripts/cluster.sh stop DIR          stop every node
#   scripts/cluster.sh kill DIR N        kill node N's VM at once (a crash); it stays down
#   scripts/cluster.sh stop-node DIR N   stop node N gracefully
#   scripts/cluster.sh start-node DIR N  start node N again on its port and data; it rejoins
#   scripts/cluster.sh pause DIR N       freeze node N (SIGSTOP)
#   scripts/cluster.sh resume DIR N      let it run again (SIGCONT)
#   scripts/cluster.sh ctl DIR N ARGS... rabbitmqctl against node N
#
# DIR/cluster.env holds JA_CLUSTER_PORTS="P1 P2 P3", JA_CLUSTER_NODES="N1 N2 N3" and
# JA_CLUSTER_URIS (what start prints).
set -euo pipefail

command=${1:?usage: cluster.sh start|stop|kill|stop-node|start-node|pause|resume|ctl DIR [N] [ARGS]}
dir=${2:?usage: cluster.sh COMMAND DIR [N]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)

port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: [0-9A-F]+:${hex} [0-9A-F]+:[0-9A-F]+ 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Three AMQP ports whose Erlang distribution (+20000) and TLS (+100) ports are free too, from the
# top of the range scripts/broker.sh uses, so single test nodes and a cluster can run together;
# claimed under broker.sh's lock so that a node starting meanwhile does not take them.
pick_ports() {
    local found=() port claims=${TMPDIR:-/tmp}/jube-amqp-port-claims
    mkdir -p "$claims"
    exec 9>"$claims/.lock"
    flock 9
    find "$claims" -name 'port-*' -mmin +2 -delete 2>/dev/null || true
    for port in $(seq 20199 -1 20100); do
        if [ ! -e "$claims/port-$port" ] && ! port_in_use "$port" &&
            ! port_in_use $((port + 20000)) && ! port_in_use $((port + 100)); then
            found+=("$port")
            [ "${#found[@]}" = 3 ] && break
        fi
    done
    if [ "${#found[@]}" != 3 ]; then
        flock -u 9
        echo "cluster.sh: no three free ports in 20100..20199" >&2
        return 1
    fi
    for port in "${found[@]}"; do
        touch "$claims/port-$port"
    done
    flock -u 9
    echo "${found[@]}"
}

node_dir() { echo "$dir/node$1"; }

load() {
    # shellcheck disable=SC1091
    . "$dir/cluster.env"
    read -r -a ports <<<"$JA_CLUSTER_PORTS"
    read -r -a nodes <<<"$JA_CLUSTER_NODES"
}

need_n() {
    case "${1:-}" in
    1 | 2 | 3) ;;
    *)
        echo "cluster.sh: node number must be 1, 2 or 3, not '${1:-}'" >&2
        exit 2
        ;;
    esac
}

pid_of() { cat "$(node_dir "$1")/broker.pid"; }

case "$command" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # A cluster this DIR already runs (the suite starts one while it builds) is used as it is.
    if [ -f "$dir/cluster.env" ]; then
        load
        up=0
        for n in 1 2 3; do
            port_in_use "${ports[$((n - 1))]}" && kill -0 "$(pid_of $n)" 2>/dev/null && up=$((up + 1))
        done
        if [ "$up" = 3 ]; then
            echo "$JA_CLUSTER_URIS"
            exit 0
        fi
    fi
    read -r -a ports <<<"$(pick_ports)"
    # The three start together (each takes a few seconds); then 2 and 3 join 1, one at a time.
    pids=()
    for n in 1 2 3; do
        bash "$here/broker.sh" fresh "$(node_dir $n)" "${ports[$((n - 1))]}" >/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
    nodes=()
    for n in 1 2 3; do
        nodes+=("jubeamqp${ports[$((n - 1))]}@localhost")
    done
    for n in 2 3; do
        node=${nodes[$((n - 1))]}
        RABBITMQ_NODENAME=$node rabbitmqctl -q -n "$node" stop_app >/dev/null
        RABBITMQ_NODENAME=$node rabbitmqctl -q -n "$node" join_cluster "${nodes[0]}" >/dev/null
        RABBITMQ_NODENAME=$node rabbitmqctl -q -n "$node" start_app >/dev/null
    done
    uris=""
    for port in "${ports[@]}"; do
        uris="${uris:+$uris,}amqp://guest:guest@127.0.0.1:$port/"
    done
    printf 'JA_CLUSTER_PORTS="%s"\nJA_CLUSTER_NODES="%s"\nJA_CLUSTER_URIS="%s"\n' "${ports[*]}" \
        "${nodes[*]}" "$uris" >"$dir/cluster.env"
    echo "$uris"
    ;;
stop)
    [ -f "$dir/cluster.env" ] || exit 0
    for n in 1 2 3; do
        kill -CONT "$(pid_of $n)" 2>/dev/null || true
        bash "$here/broker.sh" stop "$(node_dir $n)" &
    done
    wait
    ;;
kill)
    need_n "${1:-}"
    bash "$here/broker.sh" kill "$(node_dir "$1")"
    ;;
stop-node)
    need_n "${1:-}"
    load
    rabbitmqctl -q -n "${nodes[$(($1 - 1))]}" stop >/dev/null
    ;;
start-node)
    need_n "${1:-}"
    load
    bash "$here/broker.sh" start "$(node_dir "$1")" "${ports[$(($1 - 1))]}" >/dev/null
    ;;
pause)
    need_n "${1:-}"
    kill -STOP "$(pid_of "$1")"
    ;;
resume)
    need_n "${1:-}"
    kill -CONT "$(pid_of "$1")"
    ;;
ctl)
    need_n "${1:-}"
    load
    node=${nodes[$(($1 - 1))]}
    shift
    RABBITMQ_NODENAME=$node rabbitmqctl -n "$node" "$@"
    ;;
*)
    echo "cluster.sh: unknown command '$command'" >&2
    exit 2
    ;;
esac
