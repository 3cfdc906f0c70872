#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the service three times and runs:
#   ASan + UBSan   every unit test and every integration scenario on single RabbitMQ nodes (the
#                  real binary, real brokers, the stand-in Jube), under AddressSanitizer and
#                  UndefinedBehaviorSanitizer
#   release        the cluster tests (a local three-node cluster, scripts/cluster.sh), at the
#                  same time as the ASan run; then the unit tests and the adaptive-concurrency
#                  measurements (label release), alone on the machine, since they measure
#   TSan           the ring, the worker bells and two pipeline tests, under ThreadSanitizer
# Each integration scenario runs once, in the build that checks it most: memory and undefined
# behaviour on one node, timing on the cluster and in the measurements. The integration programs
# run side by side on RabbitMQ nodes of their own (scripts/broker.sh, one per group of programs),
# JA_TEST_JOBS tests at once (5 unless set); the tests of one node run one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${JA_SKIP_INSTALL:-0}" != 1 ]; then
    bash scripts/install-deps.sh
fi

build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DJA_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j2 >/dev/null
}

# Runs ctest in DIR with the given selection, writing DIR/NAME.log; the summary is read from the
# logs at the end, so runs may go side by side.
logs=()
run_ctest() {
    local dir=$1 name=$2
    shift 2
    local log="$dir/$name.log"
    logs+=("$log")
    ctest --test-dir "$dir" --output-on-failure -j "${JA_TEST_JOBS:-5}" "$@" >"$log" 2>&1 ||
        echo "ctest exited with status $?" >>"$log"
}

# The cluster takes a minute to form: it starts while the service builds, and the cluster tests'
# fixture (scripts/cluster.sh start) finds it running.
echo "== the local cluster for the cluster tests, started while building"
mkdir -p build/test-release
JA_BROKER_NO_BUSY_WAIT=1 JA_BROKER_CLASSIC_V2=1 \
    bash scripts/cluster.sh start build/test-release/test-cluster >build/test-release/cluster-start.log 2>&1 &
cluster=$!

echo "== builds: release, ASan + UBSan, TSan"
build build/test-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJA_BENCH=OFF
# Optimised as ASan's authors advise: the sanitizers check the same, and the integration tests
# push tens of thousands of messages through the service.
build build/test-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJA_SANITIZE=address -DJA_BENCH=OFF
build build/test-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJA_SANITIZE=thread -DJA_BENCH=OFF
wait "$cluster" || cat build/test-release/cluster-start.log

echo "== side by side: ASan + UBSan (unit and integration tests), release (the cluster tests)"
(
    export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_ctest build/test-asan asan -LE "cluster|release"
) &
asan=$!
run_ctest build/test-release cluster -L cluster
wait "$asan" || true
logs+=(build/test-asan/asan.log)

echo "== release: unit tests and the adaptive-concurrency measurements, alone"
run_ctest build/test-release release -L "unit|release"

echo "== TSan: its stress tests need the machine to themselves"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_ctest build/test-tsan tsan -L tsan

passed=0
failed=0
for log in "${logs[@]}"; do
    cat "$log"
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 ||
        true)
    if [ -z "$line" ]; then
        echo "test.sh: $log ran no test" >&2
        failed=$((failed + 1))
        continue
    fi
    f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+)/\1/' <<<"$line")
    n=$(sed -E 's/.* tests failed out of ([0-9]+)/\1/' <<<"$line")
    passed=$((passed + n - f))
    failed=$((failed + f))
    if [ "$f" = 0 ] && grep -q '^ctest exited with status' "$log"; then
        failed=$((failed + 1))
    fi
done
echo "suite: $passed passed, $failed failed"
[ "$failed" = 0 ]
