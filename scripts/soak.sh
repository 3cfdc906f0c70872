#!/usr/bin/env bash
# The soak (not part of CI): a steady stream through jube-amqp for 10 minutes with one broker
# restart and one 10-second Jube outage, on a private RabbitMQ node. Prints the service's RSS at
# the start and the end, and the number of messages lost.
#   JA_SOAK_SECONDS (default 600) and JA_SOAK_RATE (messages a second, default 200) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${JA_SKIP_INSTALL:-0}" != 1 ]; then
    bash scripts/install-deps.sh
fi
cmake -S . -B build/soak -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/soak -j2 >/dev/null
broker=build/soak/broker
trap 'bash scripts/broker.sh stop "$broker"' EXIT
bash scripts/broker.sh fresh "$broker" >/dev/null
mkdir -p build/soak/logs
JA_TEST_BROKER_DIR=$PWD/$broker JA_TEST_LOG_DIR=$PWD/build/soak/logs \
    build/soak/tests/test_faults soak
