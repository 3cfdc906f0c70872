#!/usr/bin/env bash
# The whole test suite: installs what it needs, then builds and runs every test three times:
#   release        all unit and integration tests, and the cluster tests (a local three-node
#                  cluster, scripts/cluster.sh)
#   asan           the same but the cluster tests and the adaptive-concurrency measurements (label
#                  release), under AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan           the ring and a pipeline test, under ThreadSanitizer
# Each build's integration tests start their own RabbitMQ nodes (scripts/broker.sh, one per group
# of test programs, and the cluster) and stand-in Jubes; CTest runs the groups side by side
# (JA_TEST_JOBS at once, 4 unless set), the tests of one node one at a time.
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

total_passed=0
total_failed=0
run_ctest() {
    local dir=$1
    shift
    local log="$dir/ctest.log"
    local status=0
    ctest --test-dir "$dir" --output-on-failure -j "${JA_TEST_JOBS:-4}" "$@" 2>&1 | tee "$log" ||
        status=$?
    local line
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "test.sh: ctest in $dir ran no test" >&2
        total_failed=$((total_failed + 1))
        return
    fi
    local failed count
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+)/\1/' <<<"$line")
    count=$(sed -E 's/.* tests failed out of ([0-9]+)/\1/' <<<"$line")
    total_passed=$((total_passed + count - failed))
    total_failed=$((total_failed + failed))
    if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
        total_failed=$((total_failed + 1))
    fi
}

echo "== release build"
build build/test-release -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_ctest build/test-release

echo "== ASan + UBSan build"
# Optimised as ASan's authors advise: the sanitizers check the same, and the integration tests
# push tens of thousands of messages through the service.
build build/test-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJA_SANITIZE=address
ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build/test-asan -LE "cluster|release"

echo "== TSan build"
build build/test-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJA_SANITIZE=thread
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    run_ctest build/test-tsan -L tsan

echo "suite: $total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ]
