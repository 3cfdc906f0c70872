#!/usr/bin/env bash
# The benchmark (not part of CI). On a private RabbitMQ node and the stand-in Jube, one after
# another: the broker's own limit (a C passthrough), the stand-in's limit (wrk), a drain of
# 100,000 transactions, latency at 25/50/80% of the drain rate, a 20 ms Jube with 16/64/256
# workers, a Jube with a knee under fixed and adaptive concurrency, idle CPU, and the ring
# against a mutex queue. Noisy figures are the median of 3 runs.
# Writes build/bench/results.json and docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${JA_SKIP_INSTALL:-0}" != 1 ]; then
    bash scripts/install-deps.sh
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else sudo apt-get install -y -qq wrk >/dev/null; fi
fi
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/bench -j2 >/dev/null
broker=build/bench/broker
trap 'bash scripts/broker.sh stop "$broker"' EXIT
bash scripts/broker.sh fresh "$broker" >/dev/null
mkdir -p build/bench/logs docs
JA_TEST_BROKER_DIR=$PWD/$broker JA_TEST_LOG_DIR=$PWD/build/bench/logs \
    build/bench/tests/bench build/bench/results.json | tee build/bench/table.md
if [ -n "${JA_BENCH_ONLY:-}" ]; then
    exit 0 # a partial run (while tuning) never replaces the table of a full one
fi

{
    echo "# Benchmarks"
    echo
    echo "Produced by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); the raw figures are in"
    echo "\`build/bench/results.json\` after a run. Broker, stand-in Jube, load generator and"
    echo "jube-amqp share one machine:"
    echo
    echo "- CPU: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -r); RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null)"
    echo "- jube-amqp $(build/bench/jube-amqp --version | head -n 1 | cut -d' ' -f2), built RelWithDebInfo"
    echo
    cat build/bench/table.md
} >docs/BENCHMARKS.md
echo "bench.sh: wrote docs/BENCHMARKS.md and build/bench/results.json" >&2
