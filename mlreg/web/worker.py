"""A gunicorn worker that reads whole requests on an event loop and runs the app on threads.

gunicorn's threaded worker gives each connection a thread while it reads the request, so a
few clients that send headers and then nothing hold every thread: predictions, ``/ping`` and
``/health`` all wait behind them. This worker reads on an asyncio event loop instead (uvloop's:
its transports and thread-safe wake-ups are libuv's, 5-13% more predictions per second at
concurrency 1 than the standard loop in bench/serve.py), with h11 parsing HTTP/1.1:

- a request (headers and body) must arrive within ``read_timeout`` of its first byte, or it
  is answered 408 and the connection closed; the loop holds a stalled client at no cost to
  anyone else, and the deadline does not depend on how long the model may take;
- only a complete request reaches a thread; probes (``inline`` paths) are answered on the
  loop itself, so they answer while every thread is busy with the model;
- a body over the limit is refused from its Content-Length, before it is read;
- on SIGTERM the worker accepts what is already in the listen backlog, stops listening, and
  keeps its open connections until they go idle: a request that arrives on a keep-alive
  connection during the drain is answered (with ``Connection: close``), never dropped.

Requests the worker answers itself (408, 413, 431, malformed HTTP) and clients that hang up
mid-request (logged as 499, without a traceback) are reported through ``on_refused``, so
they reach the access log and metrics like any other request.

The app is any WSGI callable; it is served with the whole body already read, so this suits
servers whose requests are bounded (the scoring server), not streaming uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

import h11
import orjson
import uvloop
from gunicorn.workers.base import Worker

from mlreg.errors import (
    ClientClosedRequest,
    HeadersTooLarge,
    InvalidInput,
    MlregError,
    PayloadTooLarge,
    RequestTimeout,
)
from mlreg.web.request_ids import REQUEST_ID_HEADER, request_id

logger = logging.getLogger(__name__)

#: How long a worker of several leaves new connections to the others, per connection it holds
#: (at most MAX_ACCEPT_DELAY: a worker of many connections still accepts 500 a second).
ACCEPT_DELAY_PER_CONNECTION = 0.0001
MAX_ACCEPT_DELAY = 0.002
WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Refusal:
    """A request the worker answered itself, or whose client went away before the answer."""

    method: str
    path: str
    status: int
    error_code: str
    message: str
    seconds: float
    request_id: str
    remote_addr: str


@dataclass(frozen=True)
class WorkerOptions:
    """How the worker reads requests and reports the ones it refuses."""

    #: Seconds to receive a whole request (headers and body) from its first byte.
    read_timeout: float
    #: The body limit now, and the setting that changes it (named in the 413 message).
    max_body: Callable[[], int]
    max_body_setting: str
    #: (method, path) -> answer on the event loop, not a thread (cheap probes).
    inline: Callable[[str, str], bool] = field(default=lambda method, path: False)
    on_refused: Callable[[Refusal], None] = field(default=lambda refusal: None)
    #: Called once when the drain starts (SIGTERM), e.g. to make /ping say so.
    on_drain: Callable[[], None] = field(default=lambda: None)
    #: (method, path) -> a handler that answers the request instead of the WSGI app, or None.
    direct: Callable[[str, str], DirectHandler | None] = field(default=lambda method, path: None)
    max_header_bytes: int = 64 * 1024
    request_id_header: str = REQUEST_ID_HEADER


class BufferedApp(Protocol):
    """What this worker serves: a WSGI app that carries its worker options."""

    worker_options: WorkerOptions

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...


@dataclass
class Reply:
    """A whole response: what the app (or a direct handler) answers."""

    status: int
    headers: Headers
    body: bytes
    reason: bytes = b""


@dataclass(frozen=True)
class DirectRequest:
    """A whole request, for a direct handler (no WSGI environ)."""

    method: str
    path: str
    #: Header names lower-cased; repeated headers joined with ",".
    headers: dict[str, str]
    body: bytes
    remote_addr: str


#: Answers a request on the event loop (a coroutine; its blocking work goes to the worker's
#: thread pool, the loop's default executor).
DirectHandler = Callable[[DirectRequest], Awaitable[Reply]]


class AsyncWorker(Worker):
    """gunicorn worker: asyncio + h11 for the connections, a thread pool for the app."""

    def init_process(self) -> None:
        # The loop must exist before the signals are wired (base.init_process does that).
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.connections: set[Connection] = set()
        self.draining = False
        self._quick = False
        self._accept_paused = False
        self._wake = asyncio.Event()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: BufferedApp = self.wsgi
        self.options = app.worker_options
        self.pool = ThreadPoolExecutor(max(1, self.cfg.threads), thread_name_prefix="mlreg-http")
        self.loop.set_default_executor(self.pool)  # what direct handlers run their work on

    def init_signals(self) -> None:
        for s in self.SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        add = self.loop.add_signal_handler
        add(signal.SIGTERM, self._graceful_exit)
        add(signal.SIGINT, self._quick_exit)
        add(signal.SIGQUIT, self._quick_exit)
        add(signal.SIGUSR1, self.log.reopen_files)
        add(signal.SIGWINCH, lambda: None)
        add(signal.SIGABRT, self._abort)

    def _graceful_exit(self) -> None:
        self.alive = False
        self._wake.set()

    def _quick_exit(self) -> None:
        self.alive = False
        self._quick = True
        self.cfg.worker_int(self)
        self._wake.set()

    def _abort(self) -> None:
        self.alive = False
        self.cfg.worker_abort(self)
        sys.exit(1)

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.loop.close()

    # --- accepting ------------------------------------------------------------------------

    async def _serve(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
            self._listen(listener)
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
        await self._drain()

    def _accept(self, listener: Any, limit: int = 1, draining: bool = False) -> None:
        # Every worker waits on the shared socket and the first awake takes the connection.
        # Taking all that were waiting (a client's 16 connections opened at once) left one
        # worker with nearly all keep-alive clients and the other idle: two workers served
        # 0.9-1.6x one at c=16 (bench/serve.py). So a worker takes one connection per wake-up,
        # then leaves the socket to the others for longer the more connections it holds (as
        # nginx's accept_disabled does): the least busy worker takes the next.
        for _ in range(limit):
            if not draining and len(self.connections) >= self.cfg.worker_connections:
                # The kernel keeps the rest in the backlog until a connection closes.
                self.loop.remove_reader(listener.fileno())
                self._accept_paused = True
                return
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: try again on the next wake-up
                self.log.warning("accept failed: %s", e)
                return
            self._adopt(sock, addr, listener.getsockname())
        if not draining and self.cfg.workers > 1:
            self.loop.remove_reader(listener.fileno())
            delay = min(len(self.connections) * ACCEPT_DELAY_PER_CONNECTION, MAX_ACCEPT_DELAY)
            self.loop.call_later(delay, self._listen, listener)

    def _listen(self, listener: Any) -> None:
        """Accept on ``listener`` again, unless draining or at the connection limit."""
        if not self.draining and not self._accept_paused and listener.fileno() >= 0:
            self.loop.add_reader(listener.fileno(), self._accept, listener)

    def _adopt(self, sock: socket.socket, addr: Any, server: Any) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self, addr, server)
        self.connections.add(conn)
        self.loop.create_task(self._connect(sock, conn))

    async def _connect(self, sock: socket.socket, conn: Connection) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: conn, sock)
        except OSError:
            self.connections.discard(conn)
            sock.close()

    # --- draining -------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Stop listening without losing what the kernel already accepted, then let the open
        connections finish: busy ones answer and close, idle ones close when their keep-alive
        expires, a request arriving meanwhile is answered with ``Connection: close``."""
        for listener in self.sockets:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(listener.fileno())
            if not self._quick:
                self._accept(listener, limit=1_000_000, draining=True)
            listener.close()
        self.draining = True
        with contextlib.suppress(Exception):
            self.options.on_drain()
        for conn in list(self.connections):
            conn.start_drain()
        deadline = self.loop.time() + self.cfg.graceful_timeout
        while self.connections and not self._quick and self.loop.time() < deadline:
            self.notify()
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self._accept_paused and not self.draining:
            self._accept_paused = False
            for listener in self.sockets:
                self._listen(listener)


class Connection(asyncio.Protocol):
    """One client connection: read a request, answer it, repeat while it keeps alive."""

    def __init__(self, worker: AsyncWorker, addr: Any, server: Any) -> None:
        self.worker = worker
        self.options = worker.options
        self.loop = worker.loop
        self.remote = addr[0] if isinstance(addr, tuple) else ""
        self.remote_port = str(addr[1]) if isinstance(addr, tuple) else ""
        self.server = server if isinstance(server, tuple) else ("", 0)
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.options.max_header_bytes
        )
        self.transport: asyncio.Transport | None = None
        self.request: h11.Request | None = None
        self.chunks: list[bytes] = []
        self.received = 0
        self.started = 0.0
        self.reading = False  # the first byte of a request has come, its end has not
        self.busy = False  # a complete request is with the app
        self.closed = False
        self.hung_up = False  # the client half-closed (EOF)
        self.timer: asyncio.TimerHandle | None = None
        self._rid: tuple[h11.Request, str] | None = None

    # --- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm(self.options.read_timeout if not self.worker.draining else self._keepalive())

    def data_received(self, data: bytes) -> None:
        if not self.reading and not self.busy:
            self.reading = True
            self.started = time.perf_counter()
            self._arm(self.options.read_timeout)
        self.h11.receive_data(data)
        if not self.busy:
            self._advance()

    def eof_received(self) -> bool | None:
        self.hung_up = True
        self.h11.receive_data(b"")
        if not self.busy:
            self._advance()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reading and not self.busy and not self.closed:
            self._report_hangup()
        self.closed = True
        self._disarm()
        self.worker.forget(self)

    # --- reading --------------------------------------------------------------------------

    def _advance(self) -> None:
        """Take events from h11 until the request is complete or more bytes are needed."""
        while not self.busy and not self.closed:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                if self.hung_up:  # the client closed its side mid-request
                    self._report_hangup()
                    self._close()
                elif e.error_status_hint == 431:
                    limit = self.options.max_header_bytes
                    self._refuse(HeadersTooLarge(f"request headers are over {limit} bytes"))
                else:
                    what = str(e).split(": bytearray(")[0]
                    self._refuse(InvalidInput(f"malformed HTTP request: {what}"))
                return
            if event is h11.NEED_DATA:
                if self.h11.they_are_waiting_for_100_continue and self.request is not None:
                    self._send(
                        self.h11.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._on_request(event)
            elif isinstance(event, h11.Data):
                self.received += len(event.data)
                limit = self.options.max_body()
                if self.received > limit:
                    self._refuse(PayloadTooLarge.body(None, limit, self.options.max_body_setting))
                    return
                self.chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self._close()
                return

    def _on_request(self, request: h11.Request) -> None:
        if not self.reading:  # the whole request came in the first packet
            self.reading = True
            self.started = time.perf_counter()
        self.request = request
        self.chunks, self.received = [], 0
        size = len(request.target) + sum(len(k) + len(v) + 4 for k, v in request.headers)
        if size > self.options.max_header_bytes:
            # h11 only bounds headers still incomplete; these came whole in one read.
            limit = self.options.max_header_bytes
            self._refuse(HeadersTooLarge(f"request headers are over {limit} bytes"))
            return
        length = _header(request.headers, b"content-length")
        limit = self.options.max_body()
        if length is not None and length.isdigit() and int(length) > limit:
            setting = self.options.max_body_setting
            self._refuse(PayloadTooLarge.body(int(length), limit, setting))

    def _dispatch(self) -> None:
        request = self.request
        assert request is not None
        self._disarm()
        self.reading, self.busy = False, True
        if self.transport is not None:
            self.transport.pause_reading()
        body = b"".join(self.chunks)
        self.chunks = []
        method, path = request.method.decode("latin-1"), _path(request.target)
        if self.options.inline(method, path):
            self._respond(_call(self.worker.wsgi, self._environ(request, body)))
            return
        handler = self.options.direct(method, path)
        if handler is not None:
            direct = DirectRequest(method, path, _headers(request), body, self.remote)
            task = self.loop.create_task(handler(direct))
            task.add_done_callback(self._on_direct)
            return
        environ = self._environ(request, body)
        future = self.loop.run_in_executor(self.worker.pool, _call, self.worker.wsgi, environ)
        future.add_done_callback(self._on_done)

    def _on_direct(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self._close()
            return
        error = task.exception()
        if error is not None:  # handlers answer their own errors; this is a bug in one
            logger.error("a direct handler failed", exc_info=error)
            body = orjson.dumps({"error_code": "INTERNAL_ERROR", "message": "internal error"})
            self._respond(Reply(500, [("Content-Type", "application/json")], body))
            return
        self._respond(task.result())

    def _on_done(self, future: asyncio.Future) -> None:
        if future.cancelled():
            self._close()
            return
        self._respond(future.result())

    # --- answering ------------------------------------------------------------------------

    def _respond(self, answer: Reply) -> None:
        request = self.request
        self.busy = False
        if self.closed or request is None:
            return  # the client is gone; the app's own log has the request
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length",)]
        headers.append(("Content-Length", str(len(answer.body))))
        if self.worker.draining:
            headers.append(("Connection", "close"))
        try:
            data = self.h11.send(
                h11.Response(
                    status_code=answer.status,
                    headers=headers,
                    reason=answer.reason or _reason(answer.status).encode("latin-1"),
                )
            )
            if request.method != b"HEAD":
                data += self.h11.send(h11.Data(data=answer.body))
            data += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self._close()
            return
        self._send(data)
        self._next_cycle()

    def _next_cycle(self) -> None:
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is h11.MUST_CLOSE:
            self._close()
            return
        try:
            self.h11.start_next_cycle()
        except h11.LocalProtocolError:
            self._close()
            return
        self.request = None
        self._arm(self._keepalive())
        if self.transport is not None:
            self.transport.resume_reading()
        if self.h11.trailing_data[0]:  # a pipelined request is already here
            self.reading = True
            self.started = time.perf_counter()
            self._arm(self.options.read_timeout)
            self._advance()

    def _refuse(self, error: MlregError) -> None:
        """Answer an error the app never sees, report it, and close the connection."""
        request = self.request
        method = request.method.decode("latin-1") if request is not None else "-"
        path = _path(request.target) if request is not None else "-"
        self._report(method, path, error)
        body = orjson.dumps(error.to_dict())
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if request is not None:
            headers.append((self.options.request_id_header, self._request_id(request)))
        try:
            response = h11.Response(
                status_code=error.status_code, headers=headers, reason=_reason(error.status_code)
            )
            self._send(self.h11.send(response))
            self._send(self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            # h11 cannot answer a request line it could not parse; write the bytes ourselves.
            status = f"HTTP/1.1 {error.status_code} {_reason(error.status_code)}"
            head = "\r\n".join([status, *(f"{k}: {v}" for k, v in headers)]) + "\r\n\r\n"
            self._send(head.encode("latin-1") + body)
        self._close()

    def _report_hangup(self) -> None:
        self.reading = False
        request = self.request
        if request is None:
            what = "before sending its request headers"
            method, path = "-", "-"
        else:
            method, path = request.method.decode("latin-1"), _path(request.target)
            length = _header(request.headers, b"content-length")
            of = f" of {length.decode()}" if length is not None else ""
            what = f"after {self.received}{of} body bytes"
        self._report(method, path, ClientClosedRequest(f"the client closed the connection {what}"))

    def _report(self, method: str, path: str, error: MlregError) -> None:
        request = self.request
        refusal = Refusal(
            method=method,
            path=path,
            status=error.status_code,
            error_code=error.error_code,
            message=error.message,
            seconds=time.perf_counter() - self.started if self.started else 0.0,
            request_id=self._request_id(request) if request is not None else request_id(None),
            remote_addr=self.remote,
        )
        try:
            self.options.on_refused(refusal)
        except Exception:  # reporting must never take the connection handling down
            logger.exception("reporting a refused request failed")

    def _request_id(self, request: h11.Request) -> str:
        if self._rid is None or self._rid[0] is not request:
            given = _header(request.headers, self.options.request_id_header.lower().encode())
            self._rid = (request, request_id(given.decode("latin-1") if given else None))
        return self._rid[1]

    # --- timers and closing ---------------------------------------------------------------

    def _keepalive(self) -> float:
        return float(self.worker.cfg.keepalive) if self.worker.cfg.keepalive else 0.0

    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self.timer = self.loop.call_later(seconds, self._expired)
        else:
            self.timer = self.loop.call_soon(self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if self.busy or self.closed:
            return
        if self.reading:
            timeout = self.options.read_timeout
            self._refuse(
                RequestTimeout(
                    f"the request was not received within {timeout:g} s "
                    f"({self.received} body bytes arrived); send it faster or in one go"
                )
            )
        else:
            self._close()  # idle keep-alive connection

    def start_drain(self) -> None:
        """SIGTERM: an idle connection stays open only for its keep-alive time."""
        if not self.busy and not self.reading:
            self._arm(self._keepalive())

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.reading = False
        self.closed = True

    def abort(self) -> None:
        self._disarm()
        if self.transport is not None:
            self.transport.abort()

    # --- WSGI -----------------------------------------------------------------------------

    def _environ(self, request: h11.Request, body: bytes) -> dict[str, Any]:
        target = request.target
        path, _, query = target.partition(b"?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method.decode("latin-1"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": str(self.server[0]),
            "SERVER_PORT": str(self.server[1]),
            "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("latin-1"),
            "REMOTE_ADDR": self.remote,
            "REMOTE_PORT": self.remote_port,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            # The body itself, for apps that take it without copying it out of wsgi.input.
            BODY_KEY: body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.worker.cfg.workers > 1,
            "wsgi.run_once": False,
        }
        for name, value in request.headers:
            key = name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = text
                continue
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue  # the body is already read: its length is what came
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        return environ


def _call(app: WSGI, environ: dict[str, Any]) -> Reply:
    """Run the WSGI app on a complete request and collect its whole answer."""
    status: list[str] = []
    headers: Headers = []

    def start_response(s: str, h: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
        status[:] = [s]
        headers[:] = h
        return lambda data: None

    try:
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except Exception:  # the app answers its own errors; this is a bug in it
        logger.exception("the app failed outside its error handlers")
        body = orjson.dumps({"error_code": "INTERNAL_ERROR", "message": "internal server error"})
        return Reply(500, [("Content-Type", "application/json")], body)
    code, _, reason = status[0].partition(" ")
    return Reply(int(code), headers, body, reason.encode("latin-1"))


def _headers(request: h11.Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:  # h11 lower-cases header names
            return value
    return None


def _path(target: bytes) -> str:
    return unquote_to_bytes(target.partition(b"?")[0]).decode("latin-1")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # 499
        return "Client Closed Request"


WORKER_CLASS = "mlreg.web.worker.AsyncWorker"
#: The WSGI environ key of the request body (bytes), already read by the worker.
BODY_KEY = "mlreg.body"

__all__ = [
    "BODY_KEY",
    "WORKER_CLASS",
    "AsyncWorker",
    "BufferedApp",
    "DirectHandler",
    "DirectRequest",
    "Refusal",
    "Reply",
    "WorkerOptions",
]
