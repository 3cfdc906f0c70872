#!/usr/bin/env python3
"""Checks docker-compose.yml and the Dockerfile as far as a machine without a Docker engine can:
the compose file is valid YAML with the expected services, health checks and scaling-friendly
jube-amqp service; the Dockerfile builds on Debian 12, runs as a non-root user with a health
check, and every package it installs exists in Debian 12's archive (asked of apt-cache, whose
lists scripts/install-deps.sh refreshed).

Usage: check_packaging.py SOURCE_DIR"""

import re
import subprocess
import sys

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def check_compose(path):
    with open(path) as f:
        compose = yaml.safe_load(f)
    services = compose.get("services", {})
    for name in ["rabbitmq", "jube-stub", "jube-amqp", "postgres", "redis", "jube"]:
        check(name in services, f"compose: no service '{name}'")
    for name in ["rabbitmq", "jube-amqp", "jube-stub", "jube", "postgres", "redis"]:
        check("healthcheck" in services.get(name, {}), f"compose: '{name}' has no health check")
    rabbit = services.get("rabbitmq", {})
    # The RabbitMQ operators run: a pinned 4.3 management image (the 3.x images are frozen).
    check(str(rabbit.get("image", "")).startswith("rabbitmq:4.3."), "compose: rabbitmq is not a 4.3 tag")
    check(str(rabbit.get("image", "")).endswith("-management"),
          "compose: rabbitmq is not a management image")
    amqp = services.get("jube-amqp", {})
    check("container_name" not in amqp, "compose: jube-amqp has a fixed container name (--scale)")
    check("ports" not in amqp, "compose: jube-amqp publishes a host port (--scale)")
    check(amqp.get("depends_on", {}).get("rabbitmq", {}).get("condition") == "service_healthy",
          "compose: jube-amqp does not wait for a healthy RabbitMQ")
    env = amqp.get("environment", {})
    for key in ["AMQPUri", "JUBE_URL", "JUBE_AMQP_METRICS_LISTEN"]:
        check(key in env, f"compose: jube-amqp has no {key} in its environment")
    check("command" not in amqp and "entrypoint" not in amqp,
          "compose: jube-amqp should be configured by environment only")
    for name in ["postgres", "redis", "jube"]:
        check("jube" in services.get(name, {}).get("profiles", []),
              f"compose: '{name}' is not in the 'jube' profile")
    for name in ["rabbitmq", "jube-stub", "jube-amqp"]:
        check("profiles" not in services.get(name, {}), f"compose: '{name}' should run by default")
    check_cluster_profile(services)


def check_cluster_profile(services):
    """Three clustered RabbitMQ nodes and a jube-amqp that lists them all."""
    rabbit_image = services.get("rabbitmq", {}).get("image")
    nodes = [f"rabbitmq-{n}" for n in (1, 2, 3)]
    cookies = set()
    for name in nodes:
        node = services.get(name, {})
        check("cluster" in node.get("profiles", []), f"compose: '{name}' not in the 'cluster' profile")
        check(node.get("hostname") == name, f"compose: '{name}' must have hostname {name}")
        check(node.get("image") == rabbit_image, f"compose: '{name}' is not on {rabbit_image}")
        check("healthcheck" in node, f"compose: '{name}' has no health check")
        cookies.add(node.get("environment", {}).get("RABBITMQ_ERLANG_COOKIE"))
        mounts = [v.split(":")[0] for v in node.get("volumes", [])]
        check("./packaging/rabbitmq-cluster.conf" in mounts,
              f"compose: '{name}' does not mount packaging/rabbitmq-cluster.conf")
    check(len(cookies) == 1 and None not in cookies, "compose: the nodes must share one cookie")
    conf = open(SOURCE + "/packaging/rabbitmq-cluster.conf").read()
    check("peer_discovery_backend = classic_config" in conf,
          "rabbitmq-cluster.conf: not classic config peer discovery")
    for name in nodes:
        check(f"= rabbit@{name}" in conf, f"rabbitmq-cluster.conf: does not list rabbit@{name}")
    amqp = services.get("jube-amqp-cluster", {})
    check("cluster" in amqp.get("profiles", []), "compose: 'jube-amqp-cluster' not in the profile")
    check("container_name" not in amqp and "ports" not in amqp,
          "compose: jube-amqp-cluster must stay scalable")
    uris = str(amqp.get("environment", {}).get("AMQPUri", "")).split(",")
    hosts = [re.sub(r"^amqps?://([^@]*@)?([^:/]+).*$", r"\2", u.strip()) for u in uris]
    check(sorted(hosts) == nodes, f"compose: jube-amqp-cluster's AMQPUri lists {hosts}, not {nodes}")
    for name in nodes:
        check(amqp.get("depends_on", {}).get(name, {}).get("condition") == "service_healthy",
              f"compose: jube-amqp-cluster does not wait for a healthy {name}")


def check_dockerignore(path):
    """Host build trees and run state must stay out of the image's build context."""
    try:
        lines = [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]
    except OSError:
        lines = []
        check(False, ".dockerignore: missing")
    for entry in ["build/", ".run/", "**/CMakeCache.txt"]:
        check(entry in lines, f".dockerignore: does not leave out {entry}")


def dockerfile_packages(text):
    """Every package named by an `apt-get install` in the Dockerfile."""
    joined = text.replace("\\\n", " ")
    packages = []
    for match in re.finditer(r"apt-get install ([^&\n]*)", joined):
        packages += [w for w in match.group(1).split() if not w.startswith("-")]
    return packages


def check_dockerfile(path):
    with open(path) as f:
        text = f.read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    check(froms and all(image.startswith("debian:12") for image in froms),
          f"Dockerfile: every stage must be Debian 12, found {froms}")
    check(len(froms) >= 2, "Dockerfile: not multi-stage")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    check(users and users[-1] not in ("0", "root"), "Dockerfile: the runtime user is root")
    check(re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text,
          "Dockerfile: no HEALTHCHECK on /healthz")
    check(re.search(r"^ENTRYPOINT", text, re.M), "Dockerfile: no ENTRYPOINT")
    packages = dockerfile_packages(text)
    check(len(packages) > 5, f"Dockerfile: found too few packages to check: {packages}")
    for package in packages:
        found = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                               capture_output=True, text=True)
        check(found.returncode == 0 and "Package: " + package in found.stdout,
              f"Dockerfile: package '{package}' is not in this Debian's archive")
    release = open("/etc/debian_version").read().strip()
    check(release.startswith("12"), f"not run on Debian 12 (debian_version {release})")


SOURCE = "."


def main():
    global SOURCE
    source = SOURCE = sys.argv[1]
    check_compose(source + "/docker-compose.yml")
    check_dockerignore(source + "/.dockerignore")
    check_dockerfile(source + "/Dockerfile")
    for failure in failures:
        print("FAIL " + failure)
    print(f"packaging: {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
