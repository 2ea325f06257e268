"""The HTTPS transport: a threaded HTTP/1.1 (keep-alive) server on loopback with TLS from the state folder.

Paths: ``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/oauth2/v2.0/token`` and
``/{tenant}/discovery/v2.0/keys`` (Entra); ``/v1.0/...`` (Graph); ``/_sandbox/stats``, ``/_sandbox/reset`` and
``/_sandbox/mail`` (GET: the messages recorded by sendMail, ``{"value": [...]}``; DELETE: forget them).

Transport faults, drawn per HTTP request on Graph paths only (never on the token endpoint or ``/_sandbox/``):
``reset`` closes the connection with a TCP RST before anything is done; ``slow`` delays the answer by ``slow_ms``;
``lost`` (write methods only) carries out and commits the request (a whole ``$batch`` included), then resets the
connection instead of answering. Latency is slept before handling, without holding any lock, and is cut short
when the server stops.
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .auth import token_fault
from .service import Service
from .wire import Request, Response

log = logging.getLogger("sandbox")
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
OIDC_RE = re.compile(r"/([^/]+)/v2\.0/\.well-known/openid-configuration")
TOKEN_RE = re.compile(r"/([^/]+)/oauth2/v2\.0/token")
KEYS_RE = re.compile(r"/([^/]+)/discovery/v2\.0/keys")
_INVALID_JSON = object()
_EMPTY_SEGMENTS = re.compile(r"/{2,}")


class SandboxHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does the TLS handshake in the connection's own thread and tracks connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    #: Set by the owning :class:`sandbox.app.Sandbox`: what ``POST /_sandbox/reset`` calls.
    sandbox_reset: Callable[[], None]

    def __init__(self, address: tuple[str, int], ssl_ctx: ssl.SSLContext, service: Service):
        super().__init__(address, Handler)
        self.ssl_ctx = ssl_ctx
        self.service = service
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._conn_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._conn_lock:
            self._workers.add(t)
        t.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._workers.discard(threading.current_thread())

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._conns.add(request)
        try:
            request.settimeout(15)
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                conn = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake failed: %s", exc)
                return
            with self._conn_lock:
                self._conns.discard(request)
                self._conns.add(conn)
            try:
                conn.settimeout(None)
                super().finish_request(conn, client_address)
            except OSError:
                pass
            finally:
                with self._conn_lock:
                    self._conns.discard(conn)
                with contextlib.suppress(OSError):
                    conn.close()
        finally:
            with self._conn_lock:
                self._conns.discard(request)

    def close_all(self, join_timeout: float = 2.0) -> None:
        """Shut open connections down and wait for their threads."""
        self.stopping.set()
        with self._conn_lock:
            conns, threads = list(self._conns), list(self._workers)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(join_timeout)


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive."""

    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer

    def version_string(self) -> str:
        return "Microsoft-IIS/10.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _abort(self) -> None:
        """Drop the connection with a TCP RST and no answer."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def _send(self, resp: Response, req: Request | None, graph: bool) -> None:
        data = b"" if resp.body is None else json.dumps(resp.body, separators=(",", ":")).encode()
        self.send_response(resp.status)
        if resp.body is not None:
            self.send_header("Content-Type", GRAPH_JSON if graph else "application/json; charset=utf-8")
        if req is not None and graph:
            self.send_header("request-id", req.request_id)
            self.send_header("client-request-id", req.client_request_id)
            self.send_header("x-ms-ags-diagnostic",
                             '{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E","Ring":"5","ScaleUnit":"000",'
                             '"RoleInstance":"SBX"}}')
            self.send_header("OData-Version", "4.0")
            self.send_header("Strict-Transport-Security", "max-age=31536000")
        for key, value in resp.headers.items():
            self.send_header(key, value)
        if resp.status != 204:
            self.send_header("Content-Length", str(len(data)))
        # headers and body leave in one write (two small TLS records would meet delayed ACKs: ~40 ms each)
        # (_headers_buffer is BaseHTTPRequestHandler's own, private and so not in typeshed)
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        if data and self.command != "HEAD":
            self._headers_buffer.append(data)  # type: ignore[attr-defined]
        self.flush_headers()

    def _handle(self) -> None:
        svc = self.server.service
        parts = urlsplit(self.path)
        # Graph treats "/v1.0//users" as "/v1.0/users" (clients joining a base URL that ends in "/" send it and
        # are answered normally: manicminer/hamilton#223 captured "GET /v1.0//servicePrincipals" working)
        path = unquote(_EMPTY_SEGMENTS.sub("/", parts.path))
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(method=self.command, path=path, query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                      headers=headers, raw_body=raw)
        if path == "/v1.0" or path.startswith("/v1.0/"):
            self._graph(req, svc)
        elif path.startswith("/_sandbox/"):
            self._admin(req, svc)
        else:
            resp = self._entra(req, svc)
            svc.count_response(resp.status, token=TOKEN_RE.fullmatch(path) is not None)
            self._send(resp, req, graph=False)

    def _graph(self, req: Request, svc: Service) -> None:
        if svc.draw("reset"):
            svc.count("requests")
            self._abort()
            return
        slow = svc.draw("slow")
        lost = req.method in WRITE_METHODS and svc.draw("lost")
        delay = svc.latency_s() + (svc.knobs.slow_ms / 1000.0 if slow else 0.0)
        if delay and self.server.stopping.wait(delay):
            self._abort()
            return
        if req.raw_body:
            try:
                req.body = json.loads(req.raw_body)
            except (ValueError, UnicodeDecodeError):
                req.body = _INVALID_JSON
        resp = svc.handle_graph(req)
        if lost:
            svc.count("requests")
            self._abort()
            return
        svc.count_response(resp.status)
        self._send(resp, req, graph=True)

    def _entra(self, req: Request, svc: Service) -> Response:
        auth = svc.authority
        m = OIDC_RE.fullmatch(req.path)
        if m and req.method == "GET":
            return auth.openid_configuration(m.group(1), req.headers.get("client-request-id"))
        m = KEYS_RE.fullmatch(req.path)
        if m and req.method == "GET":
            return auth.jwks(m.group(1))
        m = TOKEN_RE.fullmatch(req.path)
        if m and req.method == "POST":
            for kind, status in (("token500", 500), ("token429", 429)):
                if svc.draw(kind):
                    return token_fault(status, req.headers.get("client-request-id"))
            return auth.token(m.group(1), req, svc.knobs.roles, svc.knobs.token_lifetime,
                              wids=svc.knobs.directory_roles, secret_expired=svc.knobs.secret_expired)
        return Response(404, {"error": "not_found", "error_description": f"No endpoint at {req.path}."})

    def _admin(self, req: Request, svc: Service) -> None:
        if req.path == "/_sandbox/stats" and req.method == "GET":
            resp = Response(200, svc.stats())
        elif req.path == "/_sandbox/mail" and req.method == "GET":
            resp = Response(200, {"value": svc.store.list_mail()})
        elif req.path == "/_sandbox/mail" and req.method == "DELETE":
            resp = Response(200, {"deleted": svc.store.clear_mail()})
        elif req.path == "/_sandbox/reset" and req.method == "POST":
            self.server.sandbox_reset()
            resp = Response(200, {"reset": True, "users": svc.store.count()})
        else:
            resp = Response(404, {"error": {"code": "NotFound", "message": f"No sandbox endpoint {req.path}."}})
        self._send(resp, None, graph=False)
