#!/usr/bin/env bash
# Makes the certificates the TLS tests use, in DIR (created if needed):
#   ca.pem / ca.key          the test CA
#   server.pem / server.key  the broker's certificate from that CA, for the host name localhost
#   client.pem / client.key  a client certificate from that CA (CN jube-amqp)
#   expired.pem / expired.key  a localhost certificate from that CA that has already expired
#   other-ca.pem             an unrelated CA, which must not be trusted for any of the above
# Usage: scripts/tls-certs.sh DIR
set -euo pipefail
dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

ca() { # name subject
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 30 \
        -subj "$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

issue() { # name subject days extensions
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
        -days "$3" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=jube-amqp test CA"
ca other-ca "/CN=some other CA"
issue server "/CN=localhost" 30 "subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth"
issue client "/CN=jube-amqp" 30 "extendedKeyUsage=clientAuth"
# -days -1 ends the validity a day before it starts: expired from the moment it is made.
issue expired "/CN=localhost" -1 "subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth"
# The broker runs as this user and must read its key.
chmod 644 ./*.key
