"""AsyncClient: one DEALER connection to a router, any number of calls in flight on it, for asyncio code.

Replies are matched to calls by request id (PROTOCOL.md §6): one reader task receives everything
and hands each message to the call it belongs to. A socket monitor notices a dropped connection
(the calls in flight fail with ConnectionLostError) and the reconnection (HELLO again, §3).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, AsyncIterator, Dict, List, Optional, Union

import zmq
from zmq.utils.monitor import parse_monitor_message

from .aio_socket import LoopSocket
from .compress import Compression, check_compress, compress_value

from .connection import Key, api_key_or_env, check_curve_keys, configure_socket, curve_keys_or_env, handshake_failure, router_address
from .errors import (
    AuthError,
    ConnectionLostError,
    ProtocolError,
    RevisionError,
    TimeoutError,
    ValidationError,
    VoidRailError,
    error_from_wire,
    explain_refused_key,
)
from .protocol import (
    BINARY_REVISION,
    MAX_CREDIT,
    PROTOCOL_VERSION,
    REVISION_4,
    TASKS_REVISION,
    Encoded,
    Message,
    decode_message,
    encode_message,
    encode_value,
    payload_value,
    check_labels,
    check_method,
    trace_context,
    split_method,
)
from .task_options import (
    FINAL_TASK_STATES,
    TASK_STATES,
    check_task,
    check_task_id,
    seconds_to_ms,
    task_failure,
    task_options,
    timeout_ms,
)

log = logging.getLogger("voidrail.client")

# The router answers TIMEOUT at timeoutMs; the local deadline, this much later, covers a router that went silent.
LOCAL_DEADLINE_GRACE_S = 0.5
_MONITOR_EVENTS = (
    zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL

_Call = Union["asyncio.Future[Any]", "asyncio.Queue[Union[Message, BaseException]]"]


class AsyncClient:
    """A connection to a VoidRail router for asyncio code. Use it as `async with AsyncClient(...) as client:`.

    - `router_address`: tcp://host:port or ipc:///path (default: VOIDRAIL_ROUTER_ADDRESS, then
      VOIDRAIL_HOST/VOIDRAIL_PORT, then tcp://127.0.0.1:5555).
    - `api_key`: the client key when the router requires one (default: VOIDRAIL_API_KEY).
    - `timeout`: seconds each call may take, queueing at the router included (default 30); sent as
      REQUEST.timeoutMs and also kept locally. Every call takes its own `timeout=` too.
    - `curve_server_key`: the router's CURVE public key (Z85, 40 characters) to encrypt the connection;
      `curve_secret_key`/`curve_public_key`: this client's long-term pair (default: a fresh pair).
    - `heartbeat_interval`/`heartbeat_timeout`: ZMTP PING to notice a dead router (default 1 s / 10 s).
    - `stream_window`: chunks of credit a stream grants (default 64; CREDIT gives half back as they are used).
    - `connect_timeout`: seconds to wait for the WELCOME (default: `timeout`).
    - `context`: a zmq.Context (or zmq.asyncio.Context) to make the socket in (default: the shared instance).
    """

    def __init__(
        self,
        router_address: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 30,
        curve_server_key: Optional[Key] = None,
        curve_secret_key: Optional[Key] = None,
        curve_public_key: Optional[Key] = None,
        *,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 10.0,
        stream_window: int = 64,
        connect_timeout: Optional[float] = None,
        context: Optional[zmq.Context] = None,
    ) -> None:
        self.router_address = _router_address(router_address)
        self.api_key = api_key_or_env(api_key)
        timeout_ms(timeout)  # checks it
        self.timeout = timeout
        self._timeout_ms = timeout_ms(timeout)
        if isinstance(stream_window, bool) or not isinstance(stream_window, int) or not 1 <= stream_window <= MAX_CREDIT:
            raise ValidationError("stream_window must be a whole number of chunks, at least 1", {"path": "stream_window"})
        self.stream_window = stream_window
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        curve_server_key, curve_secret_key = curve_keys_or_env(curve_server_key, curve_secret_key)
        self._curve = {"curve_server_key": curve_server_key, "curve_secret_key": curve_secret_key, "curve_public_key": curve_public_key}
        check_curve_keys(**self._curve)
        self._heartbeat = (heartbeat_interval, heartbeat_timeout)
        self._context = context
        self.welcome: Optional[Dict[str, Any]] = None  # the WELCOME header in force
        self._ids = itertools.count(1)
        self._calls: Dict[int, _Call] = {}
        # Idempotent unary calls in flight, by id: what to send again after a reconnection (§8.3).
        self._resend: Dict[int, "tuple[str, Dict[str, Any], Optional[Encoded]]"] = {}
        self._io: Optional[LoopSocket] = None
        self._monitor_io: Optional[LoopSocket] = None
        self._welcomed: Optional[asyncio.Event] = None
        self._hello_answer: Optional["asyncio.Future[None]"] = None
        self._connected_before = False
        self._closed = False

    # ---- lifecycle ----

    async def __aenter__(self) -> "AsyncClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connects, says HELLO and waits for the WELCOME. AuthError on a refused key, TimeoutError when no router answers.
        A client connects once: after close(), make a new one."""
        if self._closed:
            raise ConnectionLostError("this AsyncClient was closed: make a new one to connect again")
        if self._io is not None:
            return
        loop = asyncio.get_running_loop()
        # A plain (not zmq.asyncio) socket: LoopSocket drives it from the loop with far less work per message.
        context: zmq.Context = zmq.Context.shadow(self._context.underlying) if self._context is not None else zmq.Context.instance()
        socket = context.socket(zmq.DEALER)
        try:
            configure_socket(socket, heartbeat_interval=self._heartbeat[0], heartbeat_timeout=self._heartbeat[1], **self._curve)
        except BaseException:
            socket.close(0)
            raise
        self._welcomed = asyncio.Event()
        self._hello_answer = loop.create_future()
        monitor = socket.get_monitor_socket(_MONITOR_EVENTS)
        self._monitor_io = LoopSocket(monitor, loop, self._on_monitor_event)
        self._io = LoopSocket(socket, loop, self._on_frames)
        socket.connect(self.router_address)
        self._send_hello()
        try:
            await asyncio.wait_for(asyncio.shield(self._hello_answer), self.connect_timeout)
        except asyncio.TimeoutError:
            await self.close()
            hint = " (with CURVE: check curve_server_key, the router's public key)" if self._curve["curve_server_key"] is not None else ""
            raise TimeoutError(
                f"no WELCOME from {self.router_address} within {self.connect_timeout} s{hint}", {"timeoutMs": int(self.connect_timeout * 1000)}
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Fails the calls in flight with ConnectionLostError and closes the connection."""
        if self._io is None or self._closed:
            return
        self._closed = True
        self._fail_all(ConnectionLostError("the client was closed"))
        if self._welcomed is not None:
            self._welcomed.set()  # calls waiting for a WELCOME go on, see the client closed, and fail
        try:
            self._io.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        if self._monitor_io is not None:
            self._monitor_io.close()
        self._io.close()

    @property
    def revision(self) -> int:
        """The protocol revision in force (WELCOME.version); 1 before any WELCOME."""
        version = (self.welcome or {}).get("version", 1)
        return version if isinstance(version, int) and not isinstance(version, bool) else 1

    # ---- calls ----

    async def invoke(
        self,
        method: str,
        *args: Any,
        timeout: Optional[float] = None,
        wait_for_dealer: bool = False,
        idempotent: bool = False,
        require: Optional[Dict[str, str]] = None,
        compress: Any = None,
        traceparent: Optional[str] = None,
        tracestate: Optional[str] = None,
    ) -> Any:
        """Calls `method` ("Service.method") with positional `args` and returns its result.

        Raises the call's error rebuilt by its code (RemoteError, NoSuchMethodError, TimeoutError, ...).
        Cancelling the awaiting task (asyncio.CancelledError) sends CANCEL to the router.
        `idempotent=True` says the call is safe to run twice: when the connection drops it is sent
        again once the client is welcomed back (waiting for a dealer), instead of failing with
        ConnectionLostError; its timeout still counts from the first send.
        `require={"gpu": "h200"}`: only a dealer whose tags hold every entry runs it (PROTOCOL.md §7.4);
        NoSuchMethodError when none has them (unless `wait_for_dealer`).
        `compress="gzip"` (or "zstd", or {"codec", "force", "level"}) compresses its binary arguments (§5.2).
        `traceparent`/`tracestate`: the caller's W3C trace context, carried to the method untouched (§4.3).
        """
        check_method(method)
        required = check_labels(require, "require")
        compression = check_compress(compress)
        trace = trace_context(traceparent, tracestate)
        if timeout is None:
            seconds, wire_timeout = self.timeout, self._timeout_ms
        else:
            seconds, wire_timeout = timeout, timeout_ms(timeout)
        header: Dict[str, Any] = {"method": method, "timeoutMs": wire_timeout}
        if wait_for_dealer:
            header["waitForDealer"] = True
        if idempotent:
            header["idempotent"] = True
        if required:
            header["require"] = required
        if trace:
            header["trace"] = trace
        return await self._unary("REQUEST", header, self._encode_args(args, compression), seconds)

    def stream(
        self,
        method: str,
        *args: Any,
        timeout: Optional[float] = None,
        window: Optional[int] = None,
        wait_for_dealer: bool = False,
        require: Optional[Dict[str, str]] = None,
        compress: Any = None,
        traceparent: Optional[str] = None,
        tracestate: Optional[str] = None,
    ) -> AsyncIterator[Any]:
        """Yields the items of a streaming method as they come (`async for chunk in client.stream(...)`), with flow control.

        The REQUEST grants `window` chunks of credit and gives half back each time half has been
        consumed. Leaving the loop early (break, an exception, cancellation) sends CANCEL.
        `timeout` is the longest wait for the next chunk (as in the TypeScript client; 0: no limit).
        """
        split_method(method)
        required = check_labels(require, "require")
        compression = check_compress(compress)
        trace = trace_context(traceparent, tracestate)
        seconds = self.timeout if timeout is None else timeout
        if seconds:
            timeout_ms(seconds)  # checks it
        credit = self.stream_window if window is None else window
        if isinstance(credit, bool) or not isinstance(credit, int) or not 1 <= credit <= MAX_CREDIT:
            raise ValidationError("window must be a whole number of chunks, at least 1", {"path": "window"})
        header: Dict[str, Any] = {"method": method, "stream": True, "credit": credit}
        if wait_for_dealer:
            header["waitForDealer"] = True
        if required:
            header["require"] = required
        if trace:
            header["trace"] = trace
        return self._stream("REQUEST", header, self._encode_args(args, compression), seconds or None, credit)

    async def discover_services(self) -> Dict[str, Any]:
        """INFO "services": {method: {description?, params?, stream, metadata?, instances}}."""
        return await self._info("services")

    async def get_router_info(self) -> Dict[str, Any]:
        """INFO "router": mode, address, uptime, dealer and request counts, auth switches."""
        return await self._info("router")

    async def get_queue_status(self) -> Dict[str, Any]:
        """INFO "queues": {method: {queueLength, availableServices, busyServices}}."""
        return await self._info("queues")

    async def get_clusters(self) -> List[Dict[str, Any]]:
        """INFO "clusters": one entry per registered dealer instance."""
        return await self._info("clusters")

    # ---- background tasks (§15) ----

    async def submit(
        self,
        method: str,
        *args: Any,
        wait_for_dealer: bool = False,
        require: Optional[Dict[str, str]] = None,
        traceparent: Optional[str] = None,
        tracestate: Optional[str] = None,
        **options: Any,
    ) -> Dict[str, Any]:
        """Submits `method(*args)` as a background task; returns the stored task (a dict, §15.4).

        Options (seconds here, ms on the wire): priority, countdown or eta, expires, time_limit,
        retries, retry_delay, backoff, retry_on, idempotency_key, lost_retries, result_ttl. A bad
        option raises ValidationError naming it, and nothing is sent.
        """
        split_method(method)
        required = check_labels(require, "require")
        trace = trace_context(traceparent, tracestate)
        wire_options = task_options(**options)
        payload = self._encode_args(args)
        if payload.slots:
            raise ValidationError("background tasks do not take binary arguments yet (PROTOCOL.md §5.1)", {"path": "args"})
        self._require(TASKS_REVISION, "submit")
        if trace:
            wire_options["trace"] = trace  # SUBMIT carries it among the task options (§15.2)
        header: Dict[str, Any] = {"method": method}
        if wire_options:
            header["options"] = wire_options
        if wait_for_dealer:
            header["waitForDealer"] = True
        if required:
            header["require"] = required
        return check_task(await self._unary("SUBMIT", header, payload, self.timeout), "submit")

    async def get_task(self, task_id: str) -> Dict[str, Any]:
        """The task: state, progress, result or error, attempts, times. TaskNotFoundError for an unknown id."""
        return check_task(await self._task_op("get_task", {"op": "get", "taskId": check_task_id(task_id)}, self.timeout), "get_task")

    async def wait_task(self, task_id: str, timeout: Optional[float] = 30) -> Any:
        """The task's result once it succeeded; its error (RemoteError, CancelledError when revoked, ...) when it ended
        otherwise; TimeoutError when it is not final within `timeout` seconds (the task goes on). None waits forever."""
        fields: Dict[str, Any] = {"op": "wait", "taskId": check_task_id(task_id)}
        local: Optional[float] = None
        if timeout is not None:
            fields["timeoutMs"] = timeout_ms(timeout)
            local = timeout
        task = check_task(await self._task_op("wait_task", fields, local), "wait_task")
        if task["state"] == "succeeded":
            return task.get("result")
        if task["state"] not in FINAL_TASK_STATES:
            raise ProtocolError(f"the router answered wait_task with a task still {task['state']}", {"reason": "BAD_ANSWER"})
        raise task_failure(task)

    def watch_task(self, task_id: str, timeout: Optional[float] = None) -> AsyncIterator[Dict[str, Any]]:
        """Yields the task's events ({state, progress?, at}) up to its final state. Leaving early stops the watch.
        `timeout`: the longest wait for the next event (None: no limit)."""
        check_task_id(task_id)
        if timeout is not None:
            seconds_to_ms("timeout", timeout, positive=True, path="timeout")
        return self._watch(task_id, timeout)

    async def _watch(self, task_id: str, timeout: Optional[float]) -> AsyncIterator[Dict[str, Any]]:
        self._require(TASKS_REVISION, "watch_task")
        async for event in self._stream("TASK", {"op": "watch", "taskId": task_id}, None, timeout, None):
            if not isinstance(event, dict) or event.get("state") not in TASK_STATES:
                raise ProtocolError("an event of watch_task is not {state, progress?, at}", {"reason": "BAD_ANSWER"})
            yield event

    async def revoke_task(self, task_id: str, terminate: bool = False) -> Dict[str, Any]:
        """Revokes the task and returns it: not started, it never runs; running, its dealer gets CANCEL."""
        fields: Dict[str, Any] = {"op": "revoke", "taskId": check_task_id(task_id)}
        if terminate:
            fields["terminate"] = True
        return check_task(await self._task_op("revoke_task", fields, self.timeout), "revoke_task")

    async def list_tasks(self, state: Optional[str] = None, method: Optional[str] = None, limit: int = 50, cursor: Optional[str] = None) -> Dict[str, Any]:
        """One page of tasks, newest first: {"tasks": [...], "cursor"?}."""
        fields: Dict[str, Any] = {"op": "list", "limit": limit}
        if state is not None:
            if state not in TASK_STATES:
                raise ValidationError(f"state must be one of {', '.join(TASK_STATES)}", {"path": "state"})
            fields["state"] = state
        if method is not None:
            fields["method"] = method
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be an integer from 1 to 1000", {"path": "limit"})
        if cursor is not None:
            fields["cursor"] = cursor
        page = await self._task_op("list_tasks", fields, self.timeout)
        if not isinstance(page, dict) or not isinstance(page.get("tasks"), list):
            raise ProtocolError("the router's answer to list_tasks is not a page of tasks", {"reason": "BAD_ANSWER"})
        return page

    # ---- requests ----

    def _encode_args(self, args: Any, compression: Optional[Compression] = None) -> Encoded:
        try:
            encoded = encode_value(list(args))
        except (TypeError, ValueError) as error:
            raise ValidationError(f"the arguments cannot be sent as JSON: {error}", {"path": "args"}) from None
        # A router below revision 4 passes frames on to dealers that may not inflate them: sent as they are (§12).
        if compression is not None and self.revision >= REVISION_4:
            return compress_value(encoded, compression)
        return encoded

    def _require(self, revision: int, what: str) -> None:
        if self.welcome is not None and self.revision < revision:
            raise RevisionError(
                f"{what} needs protocol revision {revision}; the router at {self.router_address} speaks revision {self.revision}",
                {"needed": revision, "version": self.revision},
            )

    async def _info(self, topic: str) -> Any:
        return await self._unary("INFO", {"topic": topic}, None, self.timeout)

    async def _task_op(self, what: str, fields: Dict[str, Any], seconds: Optional[float]) -> Any:
        self._require(TASKS_REVISION, what)
        return await self._unary("TASK", fields, None, seconds)

    async def _ready(self) -> LoopSocket:
        """The socket, once the connection is welcomed (after a reconnection the HELLO is under way)."""
        if self._io is None or self._closed or self._welcomed is None:
            raise ConnectionLostError("the client is not connected: use `async with AsyncClient(...)` or await connect()")
        if not self._welcomed.is_set():
            try:
                await asyncio.wait_for(self._welcomed.wait(), self.connect_timeout)
            except asyncio.TimeoutError:
                raise ConnectionLostError(f"the connection to {self.router_address} is down") from None
            if self._closed:
                raise ConnectionLostError("the client was closed")
        return self._io

    async def _unary(self, kind: str, fields: Dict[str, Any], payload: Optional[Encoded], seconds: Optional[float]) -> Any:
        io = self._io if self._welcomed is not None and self._welcomed.is_set() and not self._closed else await self._ready()
        assert io is not None
        if payload is not None and payload.slots:
            self._require(BINARY_REVISION, "sending bytes")
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[Any]" = loop.create_future()
        self._calls[request_id] = future
        timer = None
        if seconds is not None:
            timer = loop.call_later(seconds + LOCAL_DEADLINE_GRACE_S, self._expire, request_id, seconds)
        try:
            fields["id"] = request_id
            if fields.get("idempotent"):
                self._resend[request_id] = (kind, fields, payload)
            try:
                io.send(encode_message(kind, fields, payload))
            except zmq.ZMQError as error:
                raise ConnectionLostError(f"could not send to {self.router_address}: {error}") from None
            return await future
        except asyncio.CancelledError:
            # Cancelling the awaiting task cancels `future` too; whether a reply came shows in the call table.
            if self._calls.get(request_id) is future:
                self._cancel(request_id)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._resend.pop(request_id, None)
            if self._calls.get(request_id) is future:
                del self._calls[request_id]

    async def _stream(
        self, kind: str, fields: Dict[str, Any], payload: Optional[Encoded], seconds: Optional[float], credit: Optional[int]
    ) -> AsyncIterator[Any]:
        io = await self._ready()
        if payload is not None and payload.slots:
            self._require(BINARY_REVISION, "sending bytes")
        request_id = next(self._ids)
        queue: "asyncio.Queue[Union[Message, BaseException]]" = asyncio.Queue()
        self._calls[request_id] = queue
        over = False
        received = 0
        unacknowledged = 0
        batch = max(1, (credit or 2) // 2)
        try:
            io.send(encode_message(kind, {"id": request_id, **fields}, payload))
            while True:
                if seconds is None or not queue.empty():
                    item = await queue.get()
                else:
                    try:
                        item = await asyncio.wait_for(queue.get(), seconds)
                    except asyncio.TimeoutError:
                        raise TimeoutError(f"no chunk of request {request_id} within {seconds} s", {"timeoutMs": int(seconds * 1000)}) from None
                if isinstance(item, BaseException):
                    over = True
                    raise item
                if item.kind == "ERROR":
                    over = True
                    raise error_from_wire(item.header)
                if item.kind == "END":
                    over = True
                    if item.header.get("count") != received:  # §4.7: the client MUST fail the call
                        raise ProtocolError(f"END says {item.header.get('count')} chunks, {received} arrived", {"reason": "SCHEMA", "path": "count"})
                    return
                if item.kind != "CHUNK" or item.header.get("seq") != received:
                    raise ProtocolError(f"unexpected {item.kind} (seq {item.header.get('seq')}) in stream {request_id}", {"reason": "UNEXPECTED_KIND"})
                received += 1
                value = payload_value(item, "chunk")
                yield value
                if credit is not None:
                    unacknowledged += 1
                    if unacknowledged >= batch:
                        self._send_now("CREDIT", {"id": request_id, "n": unacknowledged})
                        unacknowledged = 0
        finally:
            if self._calls.get(request_id) is queue:
                del self._calls[request_id]
            if not over:
                self._cancel(request_id)

    def _expire(self, request_id: int, seconds: float) -> None:
        error = TimeoutError(f"no reply to request {request_id} within {seconds} s", {"timeoutMs": int(seconds * 1000)})
        call = self._calls.pop(request_id, None)
        if call is None:
            return
        self._cancel(request_id)
        _fail(call, error)

    def _cancel(self, request_id: int) -> None:
        self._calls.pop(request_id, None)
        self._send_now("CANCEL", {"id": request_id})

    def _send_now(self, kind: str, header: Dict[str, Any]) -> None:
        """Sends a small control message without waiting (CANCEL, CREDIT, HELLO); nothing to do on a closed socket."""
        if self._io is None or self._closed:
            return
        try:
            self._io.send(encode_message(kind, header))
        except zmq.ZMQError:
            pass

    def _send_frames(self, frames: List[Any]) -> None:
        if self._io is not None and not self._closed:
            try:
                self._io.send(frames)
            except zmq.ZMQError:
                pass

    def _send_hello(self) -> None:
        hello: Dict[str, Any] = {"role": "client", "version": PROTOCOL_VERSION}
        if self.api_key is not None:
            hello["apiKey"] = self.api_key
        self._send_now("HELLO", hello)

    # ---- receiving ----

    def _on_frames(self, frames: List[bytes]) -> None:
        calls = self._calls
        try:
            message = decode_message(frames)
        except ProtocolError as error:
            log.warning("dropped a bad message from the router: %s", error.message)
            request_id = error.data.get("id") if isinstance(error.data, dict) else None
            if request_id in calls:
                _fail(calls.pop(request_id), error)
            return
        request_id = message.header.get("id")
        call = calls.get(request_id) if isinstance(request_id, int) else None
        if call is not None and isinstance(request_id, int):
            if isinstance(call, asyncio.Future):
                del calls[request_id]
                if not call.done():
                    _settle(call, message)
            else:
                call.put_nowait(message)
        elif message.kind == "WELCOME":
            self._on_welcome(message.header)
        elif message.kind == "ERROR" and request_id is None:
            self._on_connection_error(message.header)
        # Anything else is for an id no longer waited for (timed out, cancelled): dropped (§6).

    def _on_welcome(self, header: Dict[str, Any]) -> None:
        self.welcome = header
        assert self._welcomed is not None and self._hello_answer is not None
        self._welcomed.set()
        # A restarted router knows no method until its dealers are back: the resent calls wait for one.
        for request_id, (kind, fields, payload) in list(self._resend.items()):
            if request_id in self._calls:
                self._send_frames(encode_message(kind, {**fields, "waitForDealer": True}, payload))
        if not self._hello_answer.done():
            self._hello_answer.set_result(None)

    def _on_connection_error(self, header: Dict[str, Any]) -> None:
        error = explain_refused_key(error_from_wire(header), self.api_key is not None, "client")
        reason = error.data.get("reason") if isinstance(error.data, dict) else None
        assert self._hello_answer is not None
        if not self._hello_answer.done():
            self._hello_answer.set_exception(error)
        elif reason == "NOT_AUTHENTICATED":
            # The router forgot this connection (it restarted between our messages): HELLO again.
            assert self._welcomed is not None
            self._welcomed.clear()
            self._send_hello()
        elif reason != "ALREADY_HELLO":
            log.warning("the router reported: %s", error)

    def _on_monitor_event(self, frames: List[bytes]) -> None:
        message = parse_monitor_message(frames)
        event = message["event"]
        if event == zmq.EVENT_DISCONNECTED:
            assert self._welcomed is not None
            self._welcomed.clear()
            self._fail_all(ConnectionLostError(f"the connection to {self.router_address} closed"), keep=self._resend)
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            # The first HELLO was queued before the connection existed; each later connection is new (§3).
            if self._connected_before:
                self._send_hello()
            self._connected_before = True
        elif event & _HANDSHAKE_FAILED:
            error = handshake_failure(event, message["value"], self.router_address, "client")
            if self._hello_answer is not None and not self._hello_answer.done():
                self._hello_answer.set_exception(error)
            else:
                log.error("%s", error.message)  # a reconnection refused: calls wait for a WELCOME, then fail

    def _fail_all(self, error: VoidRailError, keep: Optional[Dict[int, Any]] = None) -> None:
        """Fails every call in flight but those in `keep` (idempotent ones waiting to be sent again)."""
        failed = [request_id for request_id in self._calls if keep is None or request_id not in keep]
        for request_id in failed:
            _fail(self._calls.pop(request_id), error)


def _router_address(address: Optional[str]) -> str:
    return router_address(address)


def _fail(call: _Call, error: BaseException) -> None:
    if isinstance(call, asyncio.Future):
        if not call.done():
            call.set_exception(error)
    else:
        call.put_nowait(error)


def _settle(future: "asyncio.Future[Any]", message: Message) -> None:
    if message.kind == "RESULT":
        try:
            future.set_result(payload_value(message, "result"))
        except VoidRailError as error:
            future.set_exception(error)
    elif message.kind == "ERROR":
        future.set_exception(error_from_wire(message.header))
    else:
        future.set_exception(ProtocolError(f"unexpected {message.kind} for a unary call", {"reason": "UNEXPECTED_KIND", "kind": message.kind}))
