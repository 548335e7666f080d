#!/usr/bin/python3
"""A stand-in for `k3s server`, baked into the test image berth-test/k3s-standin as /bin/k3s.

No k3s image and no Kubernetes API server can be installed where Berth's tests run, so this
plays the part of a k3s server container for the `docker` cluster provider: it takes k3s's
command line (`server --https-listen-port N --bind-address A --tls-san X ...`, flags it does not
know are ignored), makes a CA, a server certificate and a client certificate with openssl,
serves HTTPS on the port with client certificates checked against its CA, and writes
/etc/rancher/k3s/k3s.yaml in k3s's format once it serves. Routes: /readyz and /livez answer
`ok`, /version a Kubernetes version document; no valid client certificate: 401; else 404.

Environment, for tests: STANDIN_READY_DELAY=SECONDS waits that long before serving (so the
provider sees a cluster still provisioning); STANDIN_FAIL=1 exits 1 at once with a message.
"""

import base64
import http.server
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

TLS_DIR = "/var/lib/rancher/k3s/server/tls"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+berth-standin",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def say(message):
    print(f"k3s-standin: {message}", file=sys.stderr, flush=True)


def parse(argv):
    """The flags this stand-in acts on; everything else k3s takes is accepted and ignored."""
    if not argv or argv[0] != "server":
        say(f"usage: k3s server [--https-listen-port N] [--bind-address A] [--tls-san X]... (got {argv!r})")
        sys.exit(2)
    port, bind, sans = 6443, "0.0.0.0", []
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in ("--https-listen-port", "--bind-address", "--tls-san"):
            if not eq:
                i += 1
                if i >= len(args):
                    say(f"{name} needs a value")
                    sys.exit(2)
                value = args[i]
            if name == "--https-listen-port":
                port = int(value)
            elif name == "--bind-address":
                bind = value
            else:
                sans.extend(v for v in value.split(",") if v)
        i += 1
    return port, bind, sans


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(names):
    """A CA, a server certificate for `names` and an admin client certificate, like k3s's."""
    os.makedirs(TLS_DIR, exist_ok=True)
    ca_key, ca_crt = f"{TLS_DIR}/ca.key", f"{TLS_DIR}/ca.crt"
    openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", ca_key)
    openssl("req", "-x509", "-new", "-key", ca_key, "-out", ca_crt, "-days", "3650",
            "-subj", f"/CN=k3s-standin-ca@{int(time.time())}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    alt = []
    for n in names:
        try:
            alt.append(f"IP:{ipaddress.ip_address(n)}")
        except ValueError:
            alt.append(f"DNS:{n}")
    leaves = {
        "serving": ("/CN=k3s", "serverAuth", ",".join(dict.fromkeys(alt))),
        "client-admin": ("/O=system:masters/CN=system:admin", "clientAuth", None),
    }
    for leaf, (subject, usage, san) in leaves.items():
        key, csr, crt, ext = (f"{TLS_DIR}/{leaf}.{s}" for s in ("key", "csr", "crt", "ext"))
        openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", key)
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", subject)
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n")
            f.write("keyUsage=critical,digitalSignature,keyEncipherment\n")
            f.write(f"extendedKeyUsage={usage}\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "365", "-extfile", ext)


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfig(port):
    """k3s.yaml as k3s writes it: one entry named `default`, credentials inline."""
    text = f"""apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {b64(f"{TLS_DIR}/ca.crt")}
    server: https://127.0.0.1:{port}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {b64(f"{TLS_DIR}/client-admin.crt")}
    client-key-data: {b64(f"{TLS_DIR}/client-admin.key")}
"""
    os.makedirs(os.path.dirname(KUBECONFIG), exist_ok=True)
    tmp = KUBECONFIG + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, KUBECONFIG)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k3s-standin"

    def reply(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def status(self, code, reason, message):
        doc = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}
        self.reply(code, json.dumps(doc), "application/json")

    def do_GET(self):
        if not self.connection.getpeercert():
            self.status(401, "Unauthorized", "Unauthorized")
            return
        path = self.path.split("?", 1)[0]
        if path in ("/readyz", "/livez", "/healthz"):
            self.reply(200, "ok")
        elif path == "/version":
            self.reply(200, json.dumps(VERSION, indent=2), "application/json")
        else:
            self.status(404, "NotFound", "the server could not find the requested resource")

    do_HEAD = do_GET

    def log_message(self, format, *args):
        say(f"{self.address_string()} {format % args}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        # The TLS handshake runs on the request's own thread, so a slow client holds up no one.
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            say(f"{client_address[0]}: TLS handshake failed: {e}")
            return
        super().finish_request(request, client_address)


def main():
    # As PID 1 nothing ends it on SIGTERM by default; k3s stops on it, and so does `docker stop`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if os.environ.get("STANDIN_FAIL") == "1":
        say("STANDIN_FAIL=1: exiting as a k3s server that cannot start would")
        sys.exit(1)
    port, bind, sans = parse(sys.argv[1:])
    names = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default"]
    names += [bind] if bind not in ("0.0.0.0", "::") else []
    names += sans
    make_certs(names)
    delay = float(os.environ.get("STANDIN_READY_DELAY") or 0)
    if delay > 0:
        say(f"STANDIN_READY_DELAY={delay:g}: not serving for {delay:g}s")
        time.sleep(delay)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{TLS_DIR}/serving.crt", f"{TLS_DIR}/serving.key")
    context.load_verify_locations(f"{TLS_DIR}/ca.crt")
    # Optional, so a request without a certificate gets the API server's 401, not a TLS alert.
    context.verify_mode = ssl.CERT_OPTIONAL
    Server.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server = Server((bind, port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    write_kubeconfig(port)
    say(f"serving https on {bind}:{port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
