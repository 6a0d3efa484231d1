#!/usr/bin/python3
"""ops_client.py — the operator's side of a daemon, with clients nobody here
wrote: Debian's python3-grpcio (stubs that grpc_tools.protoc generated from
real/proto/health.proto and inference.proto, in STUBS) and Python's own HTTP
client. Commands:

  check STUBS ADDR SERVICE EXPECT      Health.Check: EXPECT is SERVING,
                                       NOT_SERVING or NOT_FOUND (the status code)
  watch STUBS ADDR SERVICE OUT         Health.Watch: one line per update to OUT,
                                       until SERVING was seen (60 s at most)
  ready STUBS ADDR EXPECT              KServe ServerReady is EXPECT (true/false);
                                       when false, ModelInfer is refused UNAVAILABLE
  scrape URL OUT                       GET URL into OUT (must be 200)
  status URL CODE                      GET URL answers the HTTP status CODE
  http ADDR                            the HTTP error cases of a metrics port
  secure STUBS ADDR DIR TOKEN MTLS [NAME]
                                       a TLS frontend: who is refused, who is
                                       served (DIR: ca.pem, client.pem/key,
                                       rogue.pem/key; MTLS 1: client certs required;
                                       NAME: the name its certificate holds, localhost)
Exit status 0 when everything is as expected."""
import os, socket, struct, sys, time, urllib.error, urllib.request

def fail(what):
    print("ops_client: FAILED:", what)
    sys.exit(1)

def ok(what):
    print("ops_client: ok:", what)

cmd = sys.argv[1]
if cmd in ("check", "watch", "secure", "ready"):
    sys.path.insert(0, sys.argv[2])
    import grpc
    import health_pb2 as hpb
    import health_pb2_grpc as hpbg
    import inference_pb2 as pb
    import inference_pb2_grpc as pbg
    NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

    def classify_request(qid):
        """A ModelInfer of app classify: two FP32 values (the emulated answer is (4.0, 2.0))."""
        req = pb.ModelInferRequest(model_name="classify", id=qid)
        t = req.inputs.add()
        t.name, t.datatype = "INPUT0", "FP32"
        t.shape.extend([1, 2])
        req.raw_input_contents.append(struct.pack("<2f", 1.5, 2.5))
        return req

if cmd == "check":
    addr, svc, want = sys.argv[3], sys.argv[4], sys.argv[5]
    stub = hpbg.HealthStub(grpc.insecure_channel(addr))
    try:
        got = NAMES[stub.Check(hpb.HealthCheckRequest(service=svc), timeout=10).status]
    except grpc.RpcError as e:
        got = e.code().name
    if got != want:
        fail("Check(%r) on %s: %s, expected %s" % (svc, addr, got, want))
    ok("Check(%r) on %s: %s" % (svc, addr, got))

elif cmd == "watch":
    addr, svc, out = sys.argv[3], sys.argv[4], sys.argv[5]
    stub = hpbg.HealthStub(grpc.insecure_channel(addr))
    seen = []
    with open(out, "w") as f:
        try:
            for r in stub.Watch(hpb.HealthCheckRequest(service=svc), timeout=60):
                seen.append(NAMES[r.status])
                f.write(seen[-1] + "\n")
                f.flush()
                if seen[-1] == "SERVING":
                    break
        except grpc.RpcError as e:
            fail("Watch(%r) on %s ended: %s after %s" % (svc, addr, e.code().name, seen))
    ok("Watch(%r) on %s: %s" % (svc, addr, " -> ".join(seen)))

elif cmd == "ready":
    addr, want = sys.argv[3], sys.argv[4] == "true"
    stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel(addr))
    got = stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
    if got != want:
        fail("ServerReady on %s: %s, expected %s" % (addr, got, want))
    ok("ServerReady on %s: %s" % (addr, got))
    if not want:
        try:
            stub.ModelInfer(classify_request("early"), timeout=10)
            fail("ModelInfer on a frontend that is not ready was served")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or "not ready" not in e.details():
                fail("ModelInfer before ready: %s %s" % (e.code().name, e.details()))
            ok("ModelInfer before ready: %s (%s)" % (e.code().name, e.details()))

elif cmd == "status":
    url, want = sys.argv[2], int(sys.argv[3])
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            got = r.status
    except urllib.error.HTTPError as e:
        got = e.code
    if got != want:
        fail("GET %s: %d, expected %d" % (url, got, want))
    ok("GET %s: %d" % (url, got))

elif cmd == "scrape":
    url, out = sys.argv[2], sys.argv[3]
    with urllib.request.urlopen(url, timeout=10) as r:
        if r.status != 200 or (url.endswith("/metrics") and not
                               r.headers["Content-Type"].startswith("text/plain; version=0.0.4")):
            fail("GET %s: %d %s" % (url, r.status, r.headers["Content-Type"]))
        open(out, "wb").write(r.read())

elif cmd == "http":
    host, port = sys.argv[2].rsplit(":", 1)
    def raw(data, close_early=False):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(data)
        if close_early:
            s.close()
            return b""
        buf = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        s.close()
        return buf
    def status_of(data):
        r = raw(data)
        return int(r.split(b" ", 2)[1]) if r.startswith(b"HTTP/1.1 ") else r[:40]
    cases = [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"HEAD /metrics HTTP/1.1\r\n\r\n", 200),
        (b"GET /healthz HTTP/1.0\r\n\r\n", 200),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"garbage\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ]
    for data, want in cases:
        got = status_of(data)
        if got != want:
            fail("HTTP %r...: %s, expected %d" % (data[:30], got, want))
    ok("metrics port: 200/404/405/400/431 as expected")
    for _ in range(100):      # half requests, connections dropped at once
        raw(b"GET /metr", close_early=True)
    s = socket.create_connection((host, int(port)), timeout=60)
    s.sendall(b"GET /met")    # a silent client is cut off (after 5 s), not waited for
    try:                      # (or at once, reset, while 32 connections are still open)
        if s.recv(100) != b"":
            fail("a stalled connection got an answer")
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail("a stalled connection was not closed")
    # fuzz: random bytes and mutated requests, each on its own connection
    import random
    rng = random.Random(11)
    good = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(300):
        if i % 3 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))) + b"\r\n\r\n"
        else:
            b = bytearray(good)
            for _ in range(rng.randrange(1, 8)):
                p = rng.randrange(len(b))
                if rng.random() < 0.5:
                    b[p] = rng.randrange(256)
                else:
                    b[p:p] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 50)))
            data = bytes(b)
        r = raw(data) if data.endswith(b"\r\n\r\n") else raw(data, close_early=True)
        if r and not r.startswith(b"HTTP/1.1 "):
            fail("fuzz: not an HTTP answer: %r" % r[:40])
    if status_of(b"GET /readyz HTTP/1.1\r\n\r\n") not in (200, 503):
        fail("readyz after abuse")
    ok("metrics port: 300 fuzzed requests, dropped and stalled connections closed, still answering")

elif cmd == "secure":
    addr, d, token, mtls = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] == "1"
    name = sys.argv[7] if len(sys.argv) > 7 else "localhost"
    rd = lambda n: open(os.path.join(d, n), "rb").read()
    ca = rd("ca.pem")
    def channel(kind):
        if kind == "plain":
            return grpc.insecure_channel(addr)
        opts = (("grpc.ssl_target_name_override", name),)
        if kind == "tls":
            return grpc.secure_channel(addr, grpc.ssl_channel_credentials(ca), opts)
        pem, key = ("client.pem", "client.key") if kind == "mtls" else ("rogue.pem", "rogue.key")
        return grpc.secure_channel(addr, grpc.ssl_channel_credentials(ca, rd(key), rd(pem)), opts)
    CHANNELS = {"plain": "plaintext", "tls": "TLS without a client certificate",
                "mtls": "TLS with a client certificate",
                "rogue": "TLS with a certificate from another CA"}
    def ready(kind, tok):
        md = (("authorization", "Bearer " + tok),) if tok is not None else None
        try:
            r = pbg.GRPCInferenceServiceStub(channel(kind)).ServerReady(
                pb.ServerReadyRequest(), timeout=5, metadata=md)
            return "ready" if r.ready else "not ready"
        except grpc.RpcError as e:
            return e.code().name
    def infer(kind, tok):
        req = classify_request("tls")
        stub = pbg.GRPCInferenceServiceStub(channel(kind))
        for attempt in range(100):  # a loaded host may drop a call for its SLO: again
            if attempt:
                time.sleep(0.1)
            try:
                r = stub.ModelInfer(req, timeout=10, metadata=(("authorization", "Bearer " + tok),))
                return struct.unpack("<2f", r.raw_output_contents[0])
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or "dropped" not in e.details():
                    raise
        fail("ModelInfer: every call dropped")
    good = "mtls" if mtls else "tls"
    expect = [("plain", token, "UNAVAILABLE"), (good, None, "UNAUTHENTICATED"),
              (good, token[:-1] + ("x" if token[-1] != "x" else "y"), "UNAUTHENTICATED"),
              (good, token, "ready")]
    if mtls:
        expect += [("tls", token, "UNAVAILABLE"), ("rogue", token, "UNAVAILABLE")]
    for kind, tok, want in expect:
        got = ready(kind, tok)
        what = "%s, %s token" % (CHANNELS[kind], "no" if tok is None else
                                 "the" if tok == token else "a wrong")
        if got != want:
            fail("ServerReady over %s: %s, expected %s" % (what, got, want))
        ok("ServerReady over %s: %s" % (what, got))
    out = infer(good, token)
    if out != (4.0, 2.0):
        fail("ModelInfer over %s: %s" % (CHANNELS[good], out))
    ok("ModelInfer over %s, the token: %s" % (CHANNELS[good], out))
    # health checks need no token, but do need the TLS (and client certificate)
    try:
        st = hpbg.HealthStub(channel(good)).Check(hpb.HealthCheckRequest(service=""), timeout=5)
        ok("Health.Check over %s without a token: %s" % (CHANNELS[good], NAMES[st.status]))
    except grpc.RpcError as e:
        fail("Health.Check over %s without a token: %s" % (CHANNELS[good], e.code().name))
else:
    fail("unknown command " + cmd)
