"""ServiceDealer: a Python service instance. Subclass it, mark methods with @service_method, run() it.

Liveness while a method holds the GIL: the router checks dealers with ZMTP PING (PROTOCOL.md §10).
libzmq answers PING with PONG on its own I/O thread, a C++ thread that never takes the GIL, so a
method stuck in native code that holds the GIL (or a CPU-bound pure-Python loop) does not make
this dealer miss heartbeats. A Python heartbeat thread would not help there (it needs the GIL to
run), so liveness rests on the connection libzmq answers below Python. The dealer still opens a
BEAT connection on a thread of its own (beat.py): it is where the router sends TERMINATE, which
ends the process when a revoke with terminate finds a method ignoring its cancellation.
Requests that arrive meanwhile wait in libzmq's queue (at most max_concurrent of them, since the
router never sends more, with their CANCELs and CREDITs); the queue is sized above that, so libzmq
never stops reading, and answering PINGs, on a full pipe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import re
import signal
import socket as socket_module
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

import zmq
from zmq.utils.monitor import parse_monitor_message

from .aio_socket import LoopSocket
from .beat import HeartbeatThread
from .compress import compress_value

from .connection import Key, api_key_or_env, check_curve_keys, HANDSHAKE_FAILED_EVENTS, configure_socket, curve_keys_or_env, handshake_failure, router_address
from .errors import (
    AuthError,
    CancelledError,
    ConnectionLostError,
    ProtocolError,
    ShuttingDownError,
    TimeoutError,
    ValidationError,
    VoidRailError,
    error_from_wire,
    error_to_wire,
    explain_refused_key,
)
from .protocol import BINARY_REVISION, REVISION_4, check_labels, PROTOCOL_VERSION, Message, decode_message, encode_message, encode_value, payload_value
from .service import NAME, CallContext, MethodSpec, collect_methods, describe

log = logging.getLogger("voidrail.dealer")

PROGRESS_INTERVAL_S = 0.1  # at most one PROGRESS per task attempt this often (the latest value wins)
HEADROOM_BYTES = 64 * 1024  # what the other frames of a message may take beside its payload (WELCOME.maxMessageSize)
_DONE = object()
# HELLO `host`: a host name the router accepts (printable ASCII, no spaces, 1..255); another is left out.
_HOST_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
BEAT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
_MONITOR_EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED_EVENTS


class _Running:
    """A call in progress on this dealer."""

    __slots__ = (
        "cancel_reason",
        "context",
        "task",
        "credit",
        "credit_changed",
        "in_thread",
        "progress_pending",
        "progress_sent_at",
        "progress_timer",
        "deadline_timer",
    )

    def __init__(self, credit: Optional[int], stream: bool) -> None:
        self.cancel_reason: Optional[VoidRailError] = None  # set once: cancelled, past its deadline, or the router lost
        self.context: Optional[CallContext] = None  # made only for methods that take one
        self.task: Optional["asyncio.Task[None]"] = None
        self.credit = credit
        self.credit_changed: Optional[asyncio.Event] = asyncio.Event() if stream else None
        self.in_thread = False  # a plain method or generator step is running in a worker thread now
        self.progress_pending: Any = _DONE
        self.progress_sent_at = 0.0
        self.progress_timer: Optional[asyncio.TimerHandle] = None
        self.deadline_timer: Optional[asyncio.TimerHandle] = None


class ServiceDealer:
    """A service instance: connects to the router, registers its @service_method methods, serves calls and task attempts.

    - `router_address`: default VOIDRAIL_ROUTER_ADDRESS, then VOIDRAIL_HOST/PORT, then tcp://127.0.0.1:5555.
    - `service_name`: the part before the dot (default: the class's `service_name` attribute, else its name).
    - `api_key`: the dealer key when the router requires one (default VOIDRAIL_API_KEY).
    - `max_concurrent`: calls this instance runs at once (default: the router decides, fifo 1, load_balance 100).
    - `heartbeat_interval`/`heartbeat_timeout`: ZMTP PING to notice a dead router (default 0.5 s / 5 s).
    - `start_timeout`: start() gives up after this many seconds without a WELCOME (default 30; 0 waits forever).
    - `curve_server_key`, `curve_secret_key`, `curve_public_key`: CURVE encryption, as for AsyncClient
      (default VOIDRAIL_CURVE_SERVER_KEY, VOIDRAIL_CURVE_SECRET_KEY; the public key is derived from the secret one).
    - `heartbeat_thread`: open the heartbeat connection (BEAT, §4.13) on a thread of its own, through which a revoke
      with terminate ends this process when a method ignores its cancellation (default True).
    - `tags`: labels a request can `require` (PROTOCOL.md §7.4), e.g. {"gpu": "h200"} (or the class's `tags`).
    """

    service_name: Optional[str] = None
    tags: Optional[Dict[str, str]] = None

    def __init__(
        self,
        router_address: Optional[str] = None,
        *,
        service_name: Optional[str] = None,
        api_key: Optional[str] = None,
        max_concurrent: Optional[int] = None,
        instance_id: Optional[str] = None,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 5.0,
        start_timeout: float = 30,
        curve_server_key: Optional[Key] = None,
        curve_secret_key: Optional[Key] = None,
        curve_public_key: Optional[Key] = None,
        tags: Optional[Dict[str, str]] = None,
        heartbeat_thread: bool = True,
    ) -> None:
        self.router_address = router_address_or_env(router_address)
        self.tags = check_labels(tags if tags is not None else type(self).tags, "tags")
        name = service_name or type(self).service_name or type(self).__name__
        if not NAME.match(name):
            raise ValidationError(f"service name {name!r} is not an identifier", {"path": "service_name"})
        self.service_name = name
        self.api_key = api_key_or_env(api_key)
        if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or not 1 <= max_concurrent <= 65_535):
            raise ValidationError("max_concurrent must be a whole number from 1 to 65535", {"path": "max_concurrent"})
        self.max_concurrent = max_concurrent
        self.instance_id = (instance_id or f"{socket_module.gethostname()}:{os.getpid()}")[:128].replace(" ", "_")
        self.start_timeout = start_timeout
        curve_server_key, curve_secret_key = curve_keys_or_env(curve_server_key, curve_secret_key)
        self._socket_options = dict(
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            curve_server_key=curve_server_key,
            curve_secret_key=curve_secret_key,
            curve_public_key=curve_public_key,
        )
        check_curve_keys(curve_server_key, curve_secret_key, curve_public_key)
        self.dealer_id: Optional[str] = None
        self.welcome: Optional[Dict[str, Any]] = None
        self._methods = collect_methods(self)
        # Positional arity of each method, to check most calls without inspect's bind (None: bind decides).
        self._arity = {name: _arity(signature) for name, (_, _, signature) in self._methods.items()}
        if not self._methods:
            raise ValidationError(f"{self.service_name} has no @service_method methods", {"path": "methods"})
        self._state = "stopped"  # stopped → connecting → (setup →) registered ⇄ connecting → draining → stopped
        self._io: Optional[LoopSocket] = None
        self._monitor_io: Optional[LoopSocket] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._running: Dict[int, _Running] = {}
        self._registered: Optional["asyncio.Future[None]"] = None
        self._idle: Optional[asyncio.Event] = None
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._connected_before = False
        self._lost_at: Optional[float] = None
        self._stop_requested: Optional[asyncio.Event] = None
        self._loop_thread: Optional[int] = None
        self.heartbeat_thread = heartbeat_thread
        self._beats: Optional[HeartbeatThread] = None
        # A subclass with its own setup() registers in state "setup" and sends READY once it has run (§4.14).
        self._needs_setup = type(self).setup is not ServiceDealer.setup
        self._setup_done = False
        self._setup_running: Optional["asyncio.Future[Any]"] = None
        self._teardown_due = not self._needs_setup
        self._stopping: Optional["asyncio.Future[None]"] = None
        # Set when an operator drained this dealer at the router (DRAIN router → dealer, §4.12) and it has left.
        self.drained_by_router: Optional[asyncio.Event] = None

    @property
    def registered(self) -> bool:
        return self._state == "registered"

    @property
    def load(self) -> int:
        """Calls running now."""
        return len(self._running)

    # ---- lifecycle ----

    def setup(self) -> Any:
        """Override to get ready before any call comes (load a model onto the GPU): the dealer registers in state
        "setup" (discovery shows it; calls for its methods wait in the router's queue), runs this, then sends READY
        and serves. A plain `def` runs in a worker thread, an `async def` on the loop. Raising fails start()."""
        return None

    def teardown(self) -> Any:
        """Override to free what setup() took: runs once after the drain, while still registered (draining), before BYE.
        Not run when setup() failed. An error is logged."""
        return None

    async def start(self) -> None:
        """Connects and registers; returns once the router accepted the registration. AuthError on a refused key,
        ConnectionLostError after `start_timeout`. After a lost connection or a router restart it registers again by itself."""
        if self._io is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        # One thread per slot; without max_concurrent the router's load_balance mode allows 100 at once.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.max_concurrent or 100, thread_name_prefix=f"{self.service_name}-call")
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = None
        self.drained_by_router = asyncio.Event()
        self._registered = loop.create_future()
        socket: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
        configure_socket(socket, **self._socket_options)  # type: ignore[arg-type]
        # libzmq stops reading (and answering PING) when the receive queue is full: room for every request the router may
        # send at once (max_concurrent) with their CANCELs and CREDITs, so a dealer whose methods hold the GIL stays live.
        socket.setsockopt(zmq.RCVHWM, max(1000, 4 * (self.max_concurrent or 100)))
        self._monitor_io = LoopSocket(socket.get_monitor_socket(_MONITOR_EVENTS), loop, self._on_monitor_event)
        self._io = LoopSocket(socket, loop, self._on_frames)
        self._state = "connecting"
        socket.connect(self.router_address)
        self._send("HELLO", self._hello())
        log.info("%s connecting to %s", self.service_name, self.router_address)
        try:
            if self.start_timeout > 0:
                await asyncio.wait_for(asyncio.shield(self._registered), self.start_timeout)
            else:
                await asyncio.shield(self._registered)
        except asyncio.TimeoutError:
            await self._close()
            raise ConnectionLostError(f"{self.service_name} could not register with the router at {self.router_address} within {self.start_timeout} s") from None
        except BaseException:
            await self._close()
            raise
        if self._needs_setup and not self._setup_done:
            await self._run_setup()

    async def _run_setup(self) -> None:
        """setup() once; then READY (serving), or, when it raises, BYE and a VoidRailError out of start()."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        log.info("%s %s running setup()", self.service_name, self.dealer_id)
        if inspect.iscoroutinefunction(self.setup):
            running: "asyncio.Future[Any]" = asyncio.ensure_future(self.setup())
        else:
            running = loop.run_in_executor(self._pool, self.setup)
        self._setup_running = running

        def finished(future: "asyncio.Future[Any]") -> None:
            # Here, not after the await below: start() may be cancelled (a signal) while setup() goes on.
            self._setup_running = None
            if not future.cancelled() and future.exception() is None:
                self._setup_done = True
                self._teardown_due = True

        running.add_done_callback(finished)
        try:
            await asyncio.shield(running)
        except Exception as error:  # noqa: BLE001 - any failure of setup() is a failed start
            message = f"{self.service_name} setup() failed: {type(error).__name__}: {error}"
            log.error("%s", message)
            if self._state in ("setup", "connecting"):
                self._send("BYE", {})
            await self._close(linger=1000)
            raise VoidRailError(message, {"reason": "SETUP_FAILED"}, code="SETUP_FAILED") from error
        seconds = time.monotonic() - started
        if self._state == "setup":
            if self._revision() >= REVISION_4:
                self._send("READY", {})  # a router below 4 ignored `state` and has been dispatching already
            self._state = "registered"
            log.info("%s %s setup() finished in %.1f s; serving", self.service_name, self.dealer_id, seconds)
        else:
            # Lost meanwhile (the next HELLO says nothing of setup) or stopping.
            log.info("%s setup() finished in %.1f s", self.service_name, seconds)

    async def _run_teardown(self) -> None:
        if not self._teardown_due:
            return
        self._teardown_due = False
        try:
            if inspect.iscoroutinefunction(self.teardown):
                await self.teardown()
            elif self._pool is not None:
                await asyncio.get_running_loop().run_in_executor(self._pool, self.teardown)
            else:
                self.teardown()
        except Exception as error:  # noqa: BLE001 - logged; the dealer leaves all the same
            log.error("%s teardown() failed: %s: %s", self.service_name, type(error).__name__, error)

    async def stop(self) -> None:
        """Drains and leaves: DRAIN (the router sends no new work), waits for the running calls, BYE, closes.
        A second call while a stop is under way waits for that one."""
        if self._stopping is None:
            if self._io is None:
                return
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._state in ("registered", "connecting", "setup"):
            was_registered = self._state in ("registered", "setup")
            self._state = "draining"
            if was_registered:
                self._send("DRAIN", {})
            if self._setup_running is not None:
                # A setup() under way finishes first: teardown() must not race it (one that fails closes by itself).
                await asyncio.gather(asyncio.shield(self._setup_running), return_exceptions=True)
            if was_registered and self._io is not None:
                assert self._idle is not None
                await self._idle.wait()
                # Still registered (draining) while what setup() took is freed: a replacement may need it (GPU memory).
                await self._run_teardown()
                self._send("BYE", {})
        if self._io is None:
            return
        # BYE must leave before the socket closes: a second of linger (it is 0 otherwise).
        await self._close(linger=1000)
        await self._run_teardown()
        log.info("%s stopped", self.service_name)

    async def serve(self) -> None:
        """start(), then serve until SIGTERM or SIGINT (or stop_soon()), then stop(): drains, finishes running calls, leaves.
        A second signal exits at once."""
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                os._exit(130)
            log.info("%s draining", self.service_name)
            assert self._stop_requested is not None
            self._stop_requested.set()

        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or not a Unix loop
        try:
            await self.start()
            assert self.drained_by_router is not None
            stop_requested = asyncio.ensure_future(self._stop_requested.wait())
            drained = asyncio.ensure_future(self.drained_by_router.wait())
            await asyncio.wait([stop_requested, drained], return_when=asyncio.FIRST_COMPLETED)
            stop_requested.cancel()
            drained.cancel()
            await self.stop()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def stop_soon(self) -> None:
        """Asks serve() to drain and return (thread-safe)."""
        if self._loop is not None and self._stop_requested is not None:
            self._loop.call_soon_threadsafe(self._stop_requested.set)

    def run(self) -> None:
        """Runs serve() on a new event loop until drained: the usual entry point of a service script."""
        asyncio.run(self.serve())

    async def _close(self, linger: int = 0) -> None:
        self._state = "stopped"
        if self._beats is not None:
            beats, self._beats = self._beats, None
            await asyncio.get_running_loop().run_in_executor(None, beats.stop)
        for running in list(self._running.values()):
            self._abort(running, ConnectionLostError("the dealer stopped"))
        if self._registered is not None and not self._registered.done():
            self._registered.set_exception(ConnectionLostError("the dealer stopped before registering"))
        if self._io is not None:
            try:
                self._io.socket.disable_monitor()
            except zmq.ZMQError:
                pass
        if self._monitor_io is not None:
            self._monitor_io.close()
            self._monitor_io = None
        if self._io is not None:
            self._io.close(linger)
            self._io = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _hello(self) -> Dict[str, Any]:
        hello: Dict[str, Any] = {
            "role": "dealer",
            "version": PROTOCOL_VERSION,
            "service": self.service_name,
            "instanceId": self.instance_id,
            "methods": describe([spec for spec, _, _ in self._methods.values()], str(self.service_name)),
        }
        host = socket_module.gethostname()
        if _HOST_PATTERN.fullmatch(host):
            hello["host"] = host
        if self.tags:
            hello["tags"] = self.tags
        if self._needs_setup and not self._setup_done:
            hello["state"] = "setup"
        if self.max_concurrent is not None:
            hello["maxConcurrent"] = self.max_concurrent
        if self.api_key is not None:
            hello["apiKey"] = self.api_key
        return hello

    # ---- receiving ----

    def _on_frames(self, frames: List[bytes]) -> None:
        try:
            message = decode_message(frames)
        except ProtocolError as error:
            log.warning("bad message from the router: %s", error.message)
            request_id = error.data.get("id") if isinstance(error.data, dict) else None
            if request_id is not None and frames[1:2] == [b"REQUEST"]:
                self._reply_error(request_id, error)
            return
        kind = message.kind
        if kind == "REQUEST":
            self._on_request(message)
        elif kind == "CANCEL":
            running = self._running.get(message.header.get("id"))  # type: ignore[arg-type]
            if running is not None:
                self._abort(running, CancelledError("cancelled"))
        elif kind == "CREDIT":
            running = self._running.get(message.header.get("id"))  # type: ignore[arg-type]
            n = message.header.get("n")
            if running is not None and running.credit is not None and running.credit_changed is not None and isinstance(n, int) and n > 0:
                running.credit = min(2_147_483_647, running.credit + n)
                running.credit_changed.set()
        elif kind == "WELCOME":
            self._on_welcome(message.header)
        elif kind == "DRAIN":
            if self._state in ("registered", "setup", "connecting"):
                # An operator drained this dealer at the router: finish, leave, and tell whoever waits.
                log.info("%s was asked by the router to drain", self.service_name)
                asyncio.ensure_future(self._drain_for_router())
        elif kind == "ERROR" and "id" not in message.header:
            self._on_connection_error(message.header)

    async def _drain_for_router(self) -> None:
        await self.stop()
        if self.drained_by_router is not None:
            self.drained_by_router.set()

    def _on_welcome(self, header: Dict[str, Any]) -> None:
        self.welcome = header
        self.dealer_id = header.get("dealerId")
        token = header.get("beatToken")
        if self.heartbeat_thread and isinstance(token, str) and BEAT_TOKEN.match(token):
            if self._beats is None:
                self._beats = HeartbeatThread(self.router_address, self._socket_options, str(self.service_name))
            self._beats.vouch_for(token, header.get("heartbeatIntervalMs"))
        if self._state == "draining":
            return
        self._state = "setup" if self._needs_setup and not self._setup_done else "registered"
        registered = f"registered as {self.dealer_id} ({self.instance_id}) with {len(self._methods)} method(s)"
        if self._lost_at is not None:
            log.info("%s reconnected to the router after %.1f s; %s", self.service_name, time.monotonic() - self._lost_at, registered)
            self._lost_at = None
        else:
            log.info("%s %s", self.service_name, registered)
        if self._registered is not None and not self._registered.done():
            self._registered.set_result(None)

    def _on_connection_error(self, header: Dict[str, Any]) -> None:
        error = explain_refused_key(error_from_wire(header), self.api_key is not None, "dealer")
        reason = error.data.get("reason") if isinstance(error.data, dict) else None
        if isinstance(error, AuthError):
            log.error("%s could not register: %s", self.service_name, error.message)
            if self._registered is not None and not self._registered.done():
                self._registered.set_exception(error)
        elif reason == "NOT_REGISTERED" and self._state != "draining":
            # The router forgot us (it restarted between our messages): introduce ourselves again.
            self._send("HELLO", self._hello())
        elif reason != "ALREADY_HELLO":
            log.warning("the router reported: %s", error)

    def _on_monitor_event(self, frames: List[bytes]) -> None:
        message = parse_monitor_message(frames)
        event = message["event"]
        if event & HANDSHAKE_FAILED_EVENTS:
            error = handshake_failure(event, message["value"], self.router_address, "dealer")
            if self._registered is not None and not self._registered.done():
                self._registered.set_exception(error)  # start() fails at once instead of waiting out start_timeout
            else:
                log.error("%s: %s", self.service_name, error.message)
        elif event == zmq.EVENT_DISCONNECTED:
            if self._state in ("registered", "setup"):
                self._lost_at = time.monotonic()
                log.warning("%s lost the router; reconnecting", self.service_name)
                self._state = "connecting"
            # The router has already re-dispatched or failed what this dealer held: stop working on it.
            for running in list(self._running.values()):
                self._abort(running, ConnectionLostError("connection to the router lost"))
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            if self._connected_before and self._state != "draining":
                self._send("HELLO", self._hello())  # a new connection: register again (§3)
            self._connected_before = True

    # ---- running calls ----

    def _on_request(self, message: Message) -> None:
        header = message.header
        request_id = header.get("id")
        method = header.get("method")
        if not isinstance(request_id, int):
            return
        if self._state == "setup":
            # Only a router that ignores `state` sends one: refused untouched, as while draining (§4.14).
            return self._reply_error(request_id, ShuttingDownError(f"{self.service_name} is still in setup() and did not start {method}", {"notStarted": True}))
        if self._state == "draining":
            # It crossed our DRAIN on the wire: refusing it untouched lets the router give it to another dealer (§4.12).
            return self._reply_error(request_id, ShuttingDownError(f"{self.service_name} is draining and did not start {method}", {"notStarted": True}))
        prefix = f"{self.service_name}."
        entry = self._methods.get(method[len(prefix):]) if isinstance(method, str) and method.startswith(prefix) else None
        if entry is None:
            return self._reply_error(request_id, ValidationError(f"{method} is not a method of {self.service_name}", {"path": "method"}))
        spec, bound, signature = entry
        try:
            args = payload_value(message, "arguments")
        except VoidRailError as error:
            return self._reply_error(request_id, error)
        if not isinstance(args, list):
            return self._reply_error(request_id, ProtocolError("the arguments are not a JSON array", {"reason": "NOT_ARRAY"}))
        arity = self._arity[spec.name]
        if arity is None or not arity[0] <= len(args) <= arity[1]:
            try:
                signature.bind(*args)
            except TypeError as error:
                return self._reply_error(request_id, ValidationError(f"{method}: {error}", {"path": "args"}))
        task = header.get("task") if isinstance(header.get("task"), dict) else None
        deadline_ms: int = header.get("deadlineMs") or 0
        deadline = time.time() + deadline_ms / 1000 if isinstance(deadline_ms, int) and deadline_ms > 0 else None
        credit = header.get("credit") if spec.stream and isinstance(header.get("credit"), int) else None
        running = _Running(credit, spec.stream)
        kwargs: Dict[str, Any] = {}
        if spec.context:

            def report(value: Any) -> None:
                if task is None:
                    return  # PROGRESS is for task attempts only (§15.5)
                if self._loop is not None and not self._in_loop_thread():
                    self._loop.call_soon_threadsafe(self._report_progress, request_id, running, value)
                else:
                    self._report_progress(request_id, running, value)

            task_id = task.get("id") if task else None
            attempt = task.get("attempt") if task else None
            trace = header.get("trace") if isinstance(header.get("trace"), dict) else {}
            traceparent, tracestate = trace.get("traceparent"), trace.get("tracestate")
            running.context = CallContext(
                request_id,
                method,  # type: ignore[arg-type]
                deadline,
                task_id,
                attempt,
                report,
                traceparent if isinstance(traceparent, str) else None,
                tracestate if isinstance(tracestate, str) else None,
            )
            kwargs["context"] = running.context
        self._running[request_id] = running
        assert self._idle is not None and self._loop is not None
        self._idle.clear()
        if deadline is not None:
            running.deadline_timer = self._loop.call_later(deadline_ms / 1000, self._deadline_passed, request_id, running, deadline_ms)
        running.task = self._loop.create_task(self._run(request_id, running, spec, bound, args, kwargs))

    def _in_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _deadline_passed(self, request_id: int, running: _Running, deadline_ms: int) -> None:
        if self._running.get(request_id) is running:
            self._abort(running, TimeoutError(f"deadline of {deadline_ms} ms passed", {"timeoutMs": deadline_ms}))

    def _abort(self, running: _Running, reason: VoidRailError) -> None:
        if running.cancel_reason is not None:
            return
        running.cancel_reason = reason
        if running.context is not None:
            running.context.cancel_reason = reason
            running.context.cancelled.set()
        if running.credit_changed is not None:
            running.credit_changed.set()
        # A thread cannot be interrupted: its result is awaited, then replaced by the reason. Async code is cancelled.
        if running.task is not None and not running.in_thread:
            running.task.cancel()

    async def _run(self, request_id: int, running: _Running, spec: MethodSpec, bound: Callable[..., Any], args: List[Any], kwargs: Dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if spec.kind == "async":
                value = await bound(*args, **kwargs)
            elif spec.kind == "sync":
                running.in_thread = True
                try:
                    value = await loop.run_in_executor(self._pool, lambda: bound(*args, **kwargs))
                finally:
                    running.in_thread = False
            else:
                await self._stream(request_id, running, spec, bound(*args, **kwargs))
                self._flush_progress(request_id, running)
                return
            if running.cancel_reason is not None:
                raise running.cancel_reason
            try:
                encoded = compress_value(encode_value(value), self._compression(spec))
            except (TypeError, ValueError) as error:
                raise ValidationError(f"the result of {spec.name} cannot be sent as JSON: {error}", {"path": "result"}) from None
            self._check_fits(encoded, "result")
            self._flush_progress(request_id, running)
            self._send("RESULT", {"id": request_id}, encoded)
        except asyncio.CancelledError:
            self._reply_error(request_id, running.cancel_reason or CancelledError("cancelled"))
        except BaseException as error:  # noqa: B036 - every failure of a method is the caller's answer
            if running.cancel_reason is not None and not isinstance(error, VoidRailError):
                error = running.cancel_reason
            else:
                self._flush_progress(request_id, running)
            self._reply_error(request_id, error)
            if not isinstance(error, Exception):
                raise
        finally:
            if running.progress_timer is not None:
                running.progress_timer.cancel()
            if running.deadline_timer is not None:
                running.deadline_timer.cancel()
            self._running.pop(request_id, None)
            if not self._running and self._idle is not None:
                self._idle.set()

    async def _stream(self, request_id: int, running: _Running, spec: MethodSpec, iterator: Any) -> None:
        """Sends a generator's items as CHUNKs, never more than the client's credit; END after the last."""
        loop = asyncio.get_running_loop()
        credit_changed = running.credit_changed
        assert credit_changed is not None
        seq = 0
        try:
            while True:
                while running.credit == 0 and running.cancel_reason is None:
                    credit_changed.clear()
                    await credit_changed.wait()
                if running.cancel_reason is not None:
                    raise running.cancel_reason
                if spec.kind == "async_generator":
                    try:
                        item = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                else:
                    running.in_thread = True
                    try:
                        item = await loop.run_in_executor(self._pool, next, iterator, _DONE)
                    finally:
                        running.in_thread = False
                    if item is _DONE:
                        break
                if running.cancel_reason is not None:
                    raise running.cancel_reason
                try:
                    encoded = compress_value(encode_value(item), self._compression(spec))
                except (TypeError, ValueError) as error:
                    raise ValidationError(f"a chunk of {spec.name} cannot be sent as JSON: {error}", {"path": "chunk"}) from None
                self._check_fits(encoded, "chunk")
                if running.credit is not None:
                    running.credit -= 1
                if self._io is None:
                    raise ConnectionLostError("the dealer stopped")
                # Awaiting the send is the backpressure: a full connection pauses the producer.
                await self._io.send_and_wait(encode_message("CHUNK", {"id": request_id, "seq": seq}, encoded))
                seq += 1
        except BaseException:
            if spec.kind == "async_generator":
                try:
                    await iterator.aclose()
                except Exception:  # noqa: BLE001 - the first failure is the one reported
                    pass
            else:
                await loop.run_in_executor(self._pool, iterator.close)
            raise
        self._send("END", {"id": request_id, "count": seq})

    def _compression(self, spec: MethodSpec) -> Any:
        """The method's compress option, when the revision in force lets the receiver inflate (4 and above, §12)."""
        return spec.compress if spec.compress is not None and self._revision() >= REVISION_4 else None

    def _revision(self) -> int:
        version = (self.welcome or {}).get("version", 1)
        return version if isinstance(version, int) and not isinstance(version, bool) else 1

    def _check_fits(self, encoded: Any, path: str) -> None:
        if encoded.slots and (self.welcome or {}).get("version", 1) < BINARY_REVISION:
            raise ValidationError(f"the router speaks revision {(self.welcome or {}).get('version')}, which has no binary frames", {"path": path})
        limit = (self.welcome or {}).get("maxMessageSize")
        if isinstance(limit, int):
            size = len(encoded.json) + sum(memoryview(frame).nbytes for frame in encoded.frames)
            if size + HEADROOM_BYTES > limit:
                raise ValidationError(f"the {path} is {size} bytes, over the router's limit of {limit}", {"path": path, "size": size, "limit": limit})

    # ---- progress (§15.5) ----

    def _report_progress(self, request_id: int, running: _Running, value: Any) -> None:
        if self._running.get(request_id) is not running:
            return
        running.progress_pending = value
        wait = running.progress_sent_at + PROGRESS_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._flush_progress(request_id, running)
        elif running.progress_timer is None:
            assert self._loop is not None
            running.progress_timer = self._loop.call_later(wait, self._flush_progress, request_id, running)

    def _flush_progress(self, request_id: int, running: _Running) -> None:
        if running.progress_timer is not None:
            running.progress_timer.cancel()
            running.progress_timer = None
        value = running.progress_pending
        if value is _DONE:
            return
        running.progress_pending = _DONE
        running.progress_sent_at = time.monotonic()
        self._send("PROGRESS", {"id": request_id, "value": value})

    # ---- sending ----

    def _reply_error(self, request_id: int, error: BaseException) -> None:
        if not isinstance(error, VoidRailError):
            log.debug("%s: %s", self.service_name, "".join(traceback.format_exception_only(type(error), error)).strip())
        self._send("ERROR", {"id": request_id, **error_to_wire(error)})

    def _send(self, kind: str, header: Dict[str, Any], payload: Any = None) -> None:
        if self._io is None:
            return
        try:
            self._io.send(encode_message(kind, header, payload))
        except (zmq.ZMQError, TypeError, ValueError) as error:
            log.warning("could not send %s: %s", kind, error)


def _arity(signature: inspect.Signature) -> Optional["tuple[int, float]"]:
    """(fewest, most) positional arguments the signature takes, or None when keyword-only parameters make bind necessary."""
    least, most = 0, 0.0
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            if parameter.default is parameter.empty:
                least += 1
        elif parameter.kind == parameter.VAR_POSITIONAL:
            most = float("inf")
        elif parameter.kind == parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return None
    return least, most


def router_address_or_env(address: Optional[str]) -> str:
    return router_address(address)
