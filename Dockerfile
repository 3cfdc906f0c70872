# Build stage: the same commands as the README, on Debian 12.
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      librabbitmq-dev libcjson-dev libcurl4-openssl-dev libssl-dev libmicrohttpd-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build/release -j2 --target jube-amqp jube-stub

# Runtime stage: only the runtime libraries, as an unprivileged user, configured by environment.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librabbitmq4 libcjson1 libcurl4 libssl3 libmicrohttpd12 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home jube-amqp
COPY --from=build /src/build/release/jube-amqp /src/build/release/jube-stub /usr/local/bin/
USER 10001
# /metrics, /healthz and /readyz; the health check asks for liveness (curl is there for it).
ENV JUBE_AMQP_METRICS_LISTEN=0.0.0.0:9090
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/usr/local/bin/jube-amqp"]
