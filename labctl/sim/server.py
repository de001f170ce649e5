"""HTTPS transport (stdlib threading server, keep-alive) and the simulator's lifecycle: in-process and CLI."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import signal
import socket
import ssl
import struct
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from labctl.sim.app import DropConnection, SimApp
from labctl.sim.models import OntapBackend
from labctl.sim.responses import Response
from labctl.sim.seed import load_seed
from labctl.sim.tls import make_certificates

log = logging.getLogger("labctl.sim")
BASE_HEADERS = {"Content-Type": "application/hal+json", "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache,no-store,must-revalidate", "Vary": "Accept-Encoding,Origin"}


class SimConfigError(ValueError):
    """The simulator cannot start with the given options."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "libzapid-httpd"
    sys_version = ""
    timeout = 120
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.server.app.handle(self.command, self.path, headers, raw)
        except DropConnection:
            self._reset()
            return
        except Exception:  # noqa: BLE001 - a bug must answer 500, not kill the connection thread
            log.exception("simulator error on %s %s", self.command, self.path)
            response = Response(500, {"error": {"message": "Internal error in the simulator.", "code": "1"}})
        self._send(response)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

    def _send(self, response: Response) -> None:
        data = b"" if response.body is None else json.dumps(response.body, sort_keys=True).encode()
        self.send_response(response.status)
        for key, value in {**BASE_HEADERS, **response.headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset (no answer, no TLS close_notify)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimApp, context: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.app = app
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open client connection (keep-alive included)."""
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class OntapSimulator:
    """The simulator in a background thread: `with OntapSimulator() as sim: …` (url, ca_file, credentials)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tls_dir: str | Path | None = None,
                 username: str = "admin", password: str | None = None, seed: str | Path | dict | None = None,
                 state_file: str | Path | None = None, data_dir: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="labctl-sim-")
        tmp = Path(self._tmp.name)
        self.host = host
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.tls_dir = Path(tls_dir) if tls_dir else tmp / "tls"
        self.state_file = Path(state_file) if state_file else None
        if data_dir:
            self.data_dir = Path(data_dir)
        else:
            self.data_dir = self.state_file.parent / "data" if self.state_file else tmp / "data"
        try:
            spec = seed if isinstance(seed, dict) else load_seed(seed)
        except (OSError, ValueError) as exc:
            raise SimConfigError(f"cannot read the seed: {exc}") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.backend = OntapBackend(spec, self.data_dir, self.state_file)
        self.app = SimApp(self.backend, username, self.password)
        ca_path, cert, key = make_certificates(self.tls_dir, host)
        self.ca_file = str(ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = _Server((host, port), self.app, context)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, `https://HOST:PORT`."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"

    def start(self) -> OntapSimulator:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="ontap-sim",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and save the state."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()
        self.backend.save()
        self._tmp.cleanup()

    def __enter__(self) -> OntapSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # control, in-process (same effect as the /_sim endpoints) ----------------------------------------------
    def reset(self) -> None:
        """Back to the seed: state, jobs, job mode, faults, request log."""
        self.app.reset()

    def requests(self) -> list[dict[str, Any]]:
        """The `/api` call log: method, path, query, status, body, time."""
        return self.app.request_log()

    def state(self, include_jobs: bool = False) -> dict[str, Any]:
        """A deep copy of the cluster state (jobs only when asked)."""
        with self.backend.lock:
            return self.backend.dump(() if include_jobs else ("jobs",))

    def set_job_mode(self, mode: str, **params: Any) -> None:
        """`immediate`, `polls` (polls=N) or `seconds` (seconds=T)."""
        with self.backend.lock:
            self.backend.set_job_mode({"mode": mode, **params})

    def add_fault(self, **spec: Any) -> None:
        """Add a fault (see `labctl.sim.faults.Fault`)."""
        self.app.faults.add(spec)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` → (host, port); raises SimConfigError."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SimConfigError(f"--listen {listen!r}: expected HOST:PORT (port 0 picks a free one)")
    return host.strip("[]"), int(port)


def serve(listen: str, tls_dir: str | Path, password_file: str | Path, *, username: str = "admin",
          seed: str | Path | None = None, state_file: str | Path | None = None,
          data_dir: str | Path | None = None) -> None:
    """Run until SIGINT/SIGTERM, printing the base URL on a line of its own once ready."""
    host, port = parse_listen(listen)
    try:
        lines = Path(password_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SimConfigError(f"cannot read the password file: {exc}") from exc
    password = lines[0] if lines else ""
    if not password:
        raise SimConfigError(f"{password_file}: the first line of the password file is empty")
    try:
        sim = OntapSimulator(host, port, tls_dir=tls_dir, username=username, password=password, seed=seed,
                             state_file=state_file, data_dir=data_dir)
    except OSError as exc:
        raise SimConfigError(f"cannot listen on {listen}: {exc}") from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.start()
    print(sim.url, flush=True)
    try:
        stop.wait()
    finally:
        sim.stop()
