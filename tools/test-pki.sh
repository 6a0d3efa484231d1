#!/bin/bash
# test-pki.sh DIR SAN — throw-away certificates and a token for the TLS checks
# (tests/real/tls.sh, deploy/check.sh), made with Debian's openssl at test time: no
# key is ever committed. SAN is the subjectAltName of the signed certificates, e.g.
# "DNS:localhost,IP:127.0.0.1". Writes into DIR:
#   ca.pem, ca.key           a CA (one day)
#   node.pem, node.key       signed by it, SAN, server and client use (the daemons)
#   client.pem, client.key   the same, for clients
#   rogue.pem, rogue.key     self-signed, the same SAN: a certificate from nobody we trust
#   token                    a random bearer token (48 hex digits)
set -euo pipefail
[ $# = 2 ] || { echo "usage: tools/test-pki.sh DIR SAN" >&2; exit 2; }
D=$1 SAN=$2
mkdir -p "$D"
ossl() { openssl "$@" 2> "$D/openssl.log" || { cat "$D/openssl.log" >&2; exit 1; }; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$D/ca.key" -out "$D/ca.pem" -days 1 -subj /CN=nexus-test-ca
for n in node client; do
    ossl req -newkey rsa:2048 -nodes -keyout "$D/$n.key" -out "$D/$n.csr" -subj "/CN=$n"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$SAN" > "$D/$n.ext"
    ossl x509 -req -in "$D/$n.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
        -out "$D/$n.pem" -days 1 -extfile "$D/$n.ext"
done
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$D/rogue.key" -out "$D/rogue.pem" -days 1 \
    -subj /CN=rogue -addext "subjectAltName=$SAN"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$D/token"
