#!/bin/bash
# tls.sh — the daemons with TLS, mutual TLS and a bearer token (issue 10,
# item 5). Certificates are made here, at test time, with Debian's openssl (a
# CA, one certificate the daemons share for serving and as clients, a client
# certificate, and a self-signed "rogue" one); no key is ever committed. A
# scheduler, a backend and a frontend talk mutual TLS with the token among
# themselves; a second frontend serves plain TLS. Debian's python3-grpcio
# then shows who is refused (plaintext, no or a wrong token, no client
# certificate, a certificate from another CA) and who is served.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${NX_BUILD:-build}/bin
T=$(mktemp -d)
. tests/real/lib.sh
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
PY=/usr/bin/python3
EXP=tests/real/e2e.yml
D=$T/pki
tools/test-pki.sh $D DNS:localhost,IP:127.0.0.1
$PY -m grpc_tools.protoc -I real/proto --python_out=$T --grpc_python_out=$T \
    real/proto/health.proto real/proto/inference.proto

# bad security options: a clear error and exit 1 (files) or 2 (command line)
rc=0; $B/nexus-frontend $EXP --scheduler x:1 --tls-cert $D/node.pem 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q -- "--tls-cert and --tls-key go together" $T/err
rc=0; $B/nexus-frontend $EXP --scheduler x:1 --tls-cert $D/node.pem --tls-key $D/ca.pem 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q "holds no 'PRIVATE KEY-----'" $T/err
echo short > $T/short
rc=0; $B/nexus-backend $EXP --scheduler x:1 --token-file $T/short 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q "at least 16" $T/err
rc=0; $B/nexus-scheduler $EXP --token-file $T/none 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q "cannot open $T/none" $T/err
rc=0; $B/nexus-scheduler $EXP --tls-verify-clients 2>$T/err || rc=$?
[ $rc = 1 ] && grep -q -- "--tls-verify-clients needs --tls-ca" $T/err
echo "tls.sh: bad security options refused with clear errors"

S="--tls-cert $D/node.pem --tls-key $D/node.key --tls-ca $D/ca.pem --token-file $D/token"
start sched $B/nexus-scheduler $EXP --listen 127.0.0.1:0 --backends 1 $S --tls-verify-clients \
    --metrics 127.0.0.1:0
SCHED=$READY
start be0 $B/nexus-backend $EXP --scheduler $SCHED $S --tls-verify-clients
start fe0 $B/nexus-frontend $EXP --scheduler $SCHED --listen 127.0.0.1:0 $S --tls-verify-clients
FE=$READY
start fe1 $B/nexus-frontend $EXP --scheduler $SCHED --listen 127.0.0.1:0 $S
FE1=$READY
echo "tls.sh: scheduler, backend and two frontends attached over mutual TLS with the token"
# a node with the right certificates but without the token is refused: exit 1, saying why
rc=0; $B/nexus-backend $EXP --scheduler $SCHED --tls-cert $D/node.pem --tls-key $D/node.key \
    --tls-ca $D/ca.pem 2>$T/notoken.log || rc=$?
[ $rc = 1 ] && grep -q "the scheduler refused this node: a bearer token is required" $T/notoken.log || {
    echo "tls.sh: a backend without the token: exit $rc"; cat $T/notoken.log; exit 1; }
echo "tls.sh: a backend without the token refused (exit 1)"
for x in "$FE 1 fe0" "$FE1 0 fe1"; do
    set -- $x
    $PY tests/real/ops_client.py secure $T $1 $D $(cat $D/token) $2 || {
        tail -n 30 $T/$3.log $T/be0.log $T/sched.log; exit 1; }
done
# a load generator over TLS with the token: every query accounted for
$B/nexus-loadgen $EXP --frontend $FE --scheduler $SCHED --out $T/run --quiet $S
$B/nexus-sim $EXP --out $T/run/sim --quiet   # the prediction check.py compares the queries with
$PY tests/real/check.py $T/run
stop_all
# nexus-cluster passes the options to every daemon and uses them for its own calls
$B/nexus-cluster $EXP --out $T/cl --quiet --policy nexus $S --tls-verify-clients \
    --metrics 127.0.0.1:0 --scheduler-arg=--state=$T/state
$PY tests/real/check.py $T/cl
grep -q "^alloc " $T/state
echo "tls.sh: nexus-cluster over mutual TLS with the token (and --state through --scheduler-arg)"
echo "tls.sh: ok"
