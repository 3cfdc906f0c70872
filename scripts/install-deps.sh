#!/usr/bin/env bash
# Installs what building, testing and running jube-amqp need on Debian 12.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    librabbitmq-dev libcjson-dev libcurl4-openssl-dev libssl-dev openssl libmicrohttpd-dev python3 python3-yaml
    rabbitmq-server ca-certificates amqp-tools
)

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

as_root apt-get update -qq
# The Debian package may try to start a system-wide broker; the project never uses it (its
# scripts start a private node), so a refusal to start it here is harmless.
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
