"""An HTTP fault proxy on loopback between an S3 client and s3rver, for the S3 fault tests.

    with S3FaultProxy(upstream_port, rate=0.1, stall_seconds=3) as proxy:
        endpoint = proxy.endpoint       # point the storage config here
        proxy.requests                  # [(method, path), ...] every request seen
        proxy.headers                   # [{lower-case name: value}, ...] of each request

Each request is, with probability `rate`, answered by one of the enabled faults instead of being
forwarded: "500" (an S3 InternalError), "reset" (the connection is reset without a response)
or "stall" (nothing is sent for stall_seconds, then the connection is closed). Other requests
are forwarded to the upstream unchanged and the response relayed.
"""
import http.client
import http.server
import random
import socket
import struct
import threading
import time

from harness import free_port

FAULTS = ("500", "reset", "stall")


class S3FaultProxy:
    def __init__(self, upstream_port, rate=0.0, faults=FAULTS, stall_seconds=3.0, seed=None):
        self.upstream_port = upstream_port
        self.rate = rate
        self.faults = tuple(faults)
        self.stall_seconds = stall_seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = []
        self.headers = []
        self.injected = {f: 0 for f in FAULTS}
        self.port = free_port()
        self.server = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def _pick_fault(self):
        with self.lock:
            if self.rng.random() < self.rate:
                f = self.rng.choice(self.faults)
                self.injected[f] += 1
                return f
            return None

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                    proxy.headers.append({k.lower(): v for k, v in self.headers.items()})
                fault = proxy._pick_fault()
                if fault == "500":
                    msg = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError'
                           b"</Code><Message>injected by the fault proxy</Message></Error>")
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(msg)
                    return
                if fault == "reset":
                    # SO_LINGER 0: close() sends RST instead of FIN.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "stall":
                    time.sleep(proxy.stall_seconds)
                    self.close_connection = True
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "expect")}
                conn.request(self.command, self.path, body=body if length else None,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in ("transfer-encoding", "connection", "content-length"):
                        continue
                    self.send_header(k, v)
                if self.command == "HEAD":
                    self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that gave up (stall tests) close connections under us

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
