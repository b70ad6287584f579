#!/usr/bin/env python3
"""A VoidRail client in Python, written from docs/PROTOCOL.md alone, on pyzmq.

It opens one DEALER socket to the router and speaks VRP1 over it: every message is the frames
["VRP1", KIND, header JSON, payload JSON?] (PROTOCOL.md §2). It says HELLO (announcing revision 2)
and waits for WELCOME, then sends REQUEST / INFO / CREDIT / CANCEL, and SUBMIT / TASK for
background tasks (§15) when the revision in force (WELCOME.version) is 2 or more, and reads
RESULT / CHUNK / END / ERROR. Requests run one at a time; replies for ids it no longer waits for
are dropped (§6).

    from client import VoidRailClient, VoidRailError

    with VoidRailClient("tcp://127.0.0.1:5555", api_key=None, timeout=30) as client:
        client.invoke("EchoService.echo", "hi")                    # -> "hi"
        for n in client.stream("EchoService.streamNumbers", 0, 5):  # -> 0 1 2 3 4
            print(n)
        client.discover_services()                                  # INFO "services"

        task = client.submit("EchoService.add", 2, 3, priority=7, retries=2)  # stored: {"id", "state", ...}
        client.get_task(task["id"])                    # state, progress, result or error, attempts, times
        client.wait_task(task["id"], timeout=60)       # -> 5; raises the task's error, or CallTimeoutError
        for event in client.watch_task(task["id"]):    # {"state", "progress"?, "at"} up to a final state
            print(event)
        client.revoke_task(task["id"])                 # not started: it never runs
        client.list_tasks(state="failed", limit=50)    # {"tasks": [...], "cursor"?}, newest first

Task options are seconds here and milliseconds on the wire. Against a router of revision 1 the
task methods raise RevisionError (UNSUPPORTED_REVISION) and send nothing. CallTimeoutError is
also Python's TimeoutError.

As a script it runs the actions its flags name, in order, or without any runs a small demo
against a router that serves EchoService; it prints one JSON line per result:

    /usr/bin/python3 examples/python/client.py tcp://127.0.0.1:5555 [--api-key KEY]
        [--call METHOD [JSON_ARG ...]] [--call METHOD --args JSON] ... [--demo]
        [--submit METHOD [JSON_ARG ...] [--priority N --countdown S --retries N ...]]
        [--get-task ID] [--wait-task ID [--wait-timeout S]] [--watch-task ID]
        [--revoke-task ID] [--list-tasks [--state STATE --method METHOD --limit N]]

A call's or submit's arguments are either JSON words after its method, or one `--args` after it
that reads as `voidrail client --args` does: a JSON array is the argument list, any other JSON
value the one argument. Options of an action follow it (--priority after its --submit). A task
ID may be `last`: the task the latest --submit of this run stored. `--submit` prints the task id
({"op": "submit", "method", "result": ID, "state"}), the task verbs print {"op", "task": ID,
"result"} (--watch-task one "event" line per event, then "end"). `--demo` runs the demo before
the actions. Each action's result or error ({"code", "message", "data", "class"}) is printed as a
JSON line (an error there is an outcome to report, not a failure of the script). Exit status: 0
on success, 1 on a VoidRail error of the connection (one line on stderr: "client.py: CODE:
message ..."), 2 on a usage or local error.

Needs pyzmq (Debian: apt-get install python3-zmq). A router to try it against:
    ./node_modules/.bin/bun test/fixtures/python-target.ts   (prints its address)
"""

import argparse
import datetime
import itertools
import json
import math
import re
import sys
import time

try:
    import zmq
    from zmq.utils.monitor import recv_monitor_message
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("client.py: pyzmq is not installed for this Python (Debian: apt-get install python3-zmq)")

PROTOCOL_ID = b"VRP1"
PROTOCOL_VERSION = 2  # the revision announced in HELLO; 2 adds background tasks (§12, §15)
TASKS_REVISION = 2  # SUBMIT and TASK only go out when the revision in force is at least this
PAYLOAD_KINDS = {"REQUEST", "RESULT", "CHUNK"}  # the kinds with a 4th frame (§2); SUBMIT, which has one too, is only sent

TASK_STATES = ("blocked", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked", "expired")
FINAL_TASK_STATES = frozenset(("succeeded", "failed", "revoked", "expired"))
TASK_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")  # UUIDv7 (§15.3)


# ---- errors (§11) ------------------------------------------------------------------------------


class VoidRailError(Exception):
    """An ERROR from the router or a service, or one raised locally. `code` is what to branch on."""

    def __init__(self, code, message, data=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class NoSuchMethodError(VoidRailError): pass
class QueueFullError(VoidRailError): pass
class CallTimeoutError(VoidRailError, TimeoutError): pass  # TIMEOUT (TimeoutError in TypeScript); `except TimeoutError` catches it
class CancelledError(VoidRailError): pass
class DealerLostError(VoidRailError): pass
class AuthError(VoidRailError): pass
class ValidationError(VoidRailError): pass
class RemoteError(VoidRailError): pass
class ProtocolError(VoidRailError): pass
class ShuttingDownError(VoidRailError): pass
class ConnectionLostError(VoidRailError): pass    # CONNECTION_LOST (ConnectionError in TypeScript)
class TaskNotFoundError(VoidRailError): pass      # TASK_NOT_FOUND: no task has the id (never submitted, or purged)
class RevisionError(VoidRailError): pass          # UNSUPPORTED_REVISION, local only: the router's revision lacks what was asked

ERROR_CLASSES = {
    "NO_SUCH_METHOD": NoSuchMethodError,
    "QUEUE_FULL": QueueFullError,
    "TIMEOUT": CallTimeoutError,
    "CANCELLED": CancelledError,
    "DEALER_LOST": DealerLostError,
    "AUTH_FAILED": AuthError,
    "VALIDATION_ERROR": ValidationError,
    "REMOTE_ERROR": RemoteError,
    "PROTOCOL_ERROR": ProtocolError,
    "SHUTTING_DOWN": ShuttingDownError,
    "CONNECTION_LOST": ConnectionLostError,
    "TASK_NOT_FOUND": TaskNotFoundError,
    "UNSUPPORTED_REVISION": RevisionError,
}


def make_error(code, message, data=None):
    """The typed error for `code`; unknown codes (a service's own) stay a plain VoidRailError."""
    return ERROR_CLASSES.get(code, VoidRailError)(code, message, data)


def error_from_header(header):
    return make_error(str(header.get("code", "ERROR")), str(header.get("message", "")), header.get("data"))


# ---- JSON on the wire (§2, §5) -------------------------------------------------------------------


def encode_json(value):
    # Compact, and strict: NaN and Infinity are not JSON.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def decode_json(frame):
    return json.loads(frame.decode("utf-8"), parse_constant=_reject_constant)


# ---- task options and answers (§15) ------------------------------------------------------------

MAX_SECONDS = 10 * 365 * 86_400  # the longest duration a task option takes (ten years)
_CLIENT_TIMEOUT = object()  # a TASK op's default deadline: the client's own timeout


def seconds_to_ms(name, value, positive=False, maximum=MAX_SECONDS, path=None):
    """Seconds (int or float) as whole milliseconds, rounded as the TypeScript client does; ValidationError if out of range."""
    path = path or f"options.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError("VALIDATION_ERROR", f"{name} must be a number of seconds, not {value!r}"[:200], {"path": path})
    if value < 0 or (positive and value == 0) or value > maximum:
        low = "above 0" if positive else "at least 0"
        raise ValidationError("VALIDATION_ERROR", f"{name} must be {low} and at most {maximum} seconds, not {value}", {"path": path})
    return int(math.floor(value * 1000 + 0.5))


def eta_to_ms(eta):
    """A datetime (naive: local time, as datetime.timestamp reads it), an ISO 8601 string or epoch seconds, as epoch ms."""
    if isinstance(eta, str):
        try:
            eta = datetime.datetime.fromisoformat(eta)
        except ValueError:
            raise ValidationError("VALIDATION_ERROR", f"eta is not an ISO 8601 time: {eta!r}"[:200], {"path": "options.eta"}) from None
    if isinstance(eta, datetime.datetime):
        eta = eta.timestamp()
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0:
        raise ValidationError("VALIDATION_ERROR", "eta must be a datetime, an ISO 8601 string or epoch seconds", {"path": "options.eta"})
    return int(math.floor(eta * 1000 + 0.5))


def _integer(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError("VALIDATION_ERROR", f"{name} must be an integer from {low} to {high}, not {value!r}"[:200],
                              {"path": f"options.{name}"})
    return value


def task_options(priority=None, countdown=None, eta=None, expires=None, time_limit=None, retries=None,
                 retry_delay=None, backoff=None, retry_on=None, idempotency_key=None):
    """submit's options in their wire form (SUBMIT.options, milliseconds); only the ones given."""
    wire = {}
    if priority is not None:
        wire["priority"] = _integer("priority", priority, 0, 9)
    if countdown is not None and eta is not None:
        raise ValidationError("VALIDATION_ERROR", "give countdown or eta, not both", {"path": "options.eta"})
    if countdown is not None:
        wire["countdownMs"] = seconds_to_ms("countdown", countdown)
    if eta is not None:
        wire["etaMs"] = eta_to_ms(eta)
    if expires is not None:
        wire["expiresMs"] = seconds_to_ms("expires", expires, positive=True)
    if time_limit is not None:
        wire["timeLimitMs"] = seconds_to_ms("time_limit", time_limit, positive=True, maximum=2_147_483)
    if retries is not None:
        wire["retries"] = _integer("retries", retries, 0, 1000)
    if retry_delay is not None:
        wire["retryDelayMs"] = seconds_to_ms("retry_delay", retry_delay)
    if backoff is not None:
        if backoff not in ("fixed", "exponential"):
            raise ValidationError("VALIDATION_ERROR", f"backoff must be \"fixed\" or \"exponential\", not {backoff!r}"[:200],
                                  {"path": "options.backoff"})
        wire["backoff"] = backoff
    if retry_on is not None:
        if isinstance(retry_on, str):
            retry_on = [retry_on]
        if not isinstance(retry_on, (list, tuple)) or len(retry_on) > 64 or not all(
                isinstance(code, str) and 1 <= len(code) <= 128 for code in retry_on):
            raise ValidationError("VALIDATION_ERROR", "retry_on must be a list of at most 64 error codes or names (1 to 128 characters)",
                                  {"path": "options.retry_on"})
        wire["retryOn"] = list(retry_on)
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 256:
            raise ValidationError("VALIDATION_ERROR", "idempotency_key must be a string of 1 to 256 characters",
                                  {"path": "options.idempotency_key"})
        wire["idempotencyKey"] = idempotency_key
    return wire


def check_task_id(task_id):
    """`task_id` if it is one (a UUIDv7 string), else ValidationError: a malformed id is never sent."""
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.match(task_id):
        raise ValidationError("VALIDATION_ERROR", f"not a task id: {str(task_id)[:80]!r} (task ids are UUIDv7 strings)",
                              {"path": "taskId"})
    return task_id


def task_failure(task):
    """The error a finished, unsuccessful task ends with, rebuilt by its code; the task rides along as `.task`."""
    wire = task.get("error") or {"code": "UNKNOWN_ERROR", "message": f"task {task['id']} ended {task['state']}"}
    error = make_error(str(wire.get("code")), str(wire.get("message", "")), wire.get("data"))
    error.task = task
    return error


# ---- the client ----------------------------------------------------------------------------------


class VoidRailClient:
    """A connection to a VoidRail router. Connecting sends HELLO and waits for WELCOME.

    `timeout` (seconds) bounds each call: it is sent as REQUEST.timeoutMs and also kept locally,
    so a call fails with CallTimeoutError even when the router never answers.
    """

    def __init__(self, address, api_key=None, timeout=30):
        self.address = address
        self.api_key = api_key
        self.timeout = timeout
        self.welcome = None  # the WELCOME header, once welcomed
        self._ids = itertools.count(1)  # request ids: a counter per connection (§6)

        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
        # Heartbeat the router so a dead one is noticed (§10); libzmq answers its PINGs itself.
        self._socket.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        self._socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 10_000)
        # A monitor tells us when the connection drops: calls in flight then fail with
        # CONNECTION_LOST, and the reconnected socket is a new connection that must HELLO (§3).
        self._monitor = self._socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        try:
            self._socket.connect(address)
            self._hello()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self._socket.closed:
            return
        self._socket.disable_monitor()
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        self._context.term()

    # ---- public calls ----

    def invoke(self, method, *args, timeout=None):
        """Calls `method` with positional `args` and returns its result (REQUEST → RESULT)."""
        timeout = self.timeout if timeout is None else timeout
        request_id = self._request(method, args, timeout)
        return self._result(request_id, time.monotonic() + timeout)

    def stream(self, method, *args, window=64, timeout=None):
        """Yields the items of a streaming `method` (REQUEST stream → CHUNK… END), with flow control.

        The REQUEST grants `window` chunks of credit; each time window/2 chunks have been handed
        to the caller, a CREDIT gives that many back (§7.3). Leaving the loop early sends CANCEL.
        The REQUEST goes out when iteration starts.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        timeout = self.timeout if timeout is None else timeout
        batch = max(1, window // 2)
        request_id = self._request(method, args, timeout, stream=True, credit=window)
        deadline = time.monotonic() + timeout
        received = 0  # chunks so far; the next seq must equal it
        consumed = 0  # chunks handed to the caller since the last CREDIT
        over = False  # whether the request got its terminal reply
        try:
            while True:
                kind, header, payload = self._next_for(request_id, deadline)
                if kind in ("END", "ERROR"):
                    over = True
                if kind == "ERROR":
                    raise self._error(header)
                if kind == "END":
                    if header.get("count") != received:  # §4.7: the client MUST fail the call
                        raise ProtocolError("PROTOCOL_ERROR", f"END says {header.get('count')} chunks, {received} arrived",
                                            {"reason": "SCHEMA", "kind": "END", "path": "count", "id": request_id})
                    return
                if kind != "CHUNK":
                    over = True  # the router only sends CHUNK, END or ERROR for a stream
                    raise self._unexpected(kind, request_id)
                if header.get("seq") != received:
                    raise ProtocolError("PROTOCOL_ERROR", f"CHUNK seq {header.get('seq')} where {received} was due",
                                        {"reason": "SCHEMA", "kind": "CHUNK", "path": "seq", "id": request_id})
                received += 1
                yield self._payload(payload, request_id)
                consumed += 1
                if consumed >= batch:
                    self._send("CREDIT", {"id": request_id, "n": consumed})
                    consumed = 0
        finally:
            if not over:
                self._cancel(request_id)  # left early, timed out or failed: tell the router (§8.1)

    def discover_services(self):
        """INFO "services": {method name: {description?, params?, stream, metadata?, instances}}."""
        return self._info("services")

    def router_info(self):
        """INFO "router": mode, address, uptime, activeServices (the seed's active_services), request counts, auth switches."""
        return self._info("router")

    def queue_status(self):
        """INFO "queues": {method name: {queueLength, availableServices, busyServices}}."""
        return self._info("queues")

    def cluster_info(self):
        """INFO "clusters": one entry per registered dealer instance; state "active" or "draining", busy, load."""
        return self._info("clusters")

    # ---- background tasks (§15, revision 2) ----

    @property
    def revision(self):
        """The protocol revision in force on this connection (WELCOME.version), or None before the WELCOME."""
        if self.welcome is None:
            return None
        version = self.welcome.get("version", 1)
        return version if isinstance(version, int) and not isinstance(version, bool) else 1

    def submit(self, method, *args, priority=None, countdown=None, eta=None, expires=None, time_limit=None,
               retries=None, retry_delay=None, backoff=None, retry_on=None, idempotency_key=None,
               wait_for_dealer=False):
        """Submits `method(*args)` as a background task; returns the task (a dict, §15.4) once the router stored it.

        Times are seconds here and milliseconds on the wire: `countdown` (before it may start; or
        `eta`: a datetime, an ISO 8601 string or epoch seconds), `expires` (not started by then, it
        ends "expired"), `time_limit` (per attempt), `retry_delay`. `priority` 0..9 (higher first),
        `retries` further attempts, `backoff` "fixed" or "exponential", `retry_on` error codes or
        names that are retried, `idempotency_key` (the same key gives the same task). A bad option
        raises ValidationError naming it, and nothing is sent; the router checks the rest.
        """
        options = task_options(priority=priority, countdown=countdown, eta=eta, expires=expires, time_limit=time_limit,
                               retries=retries, retry_delay=retry_delay, backoff=backoff, retry_on=retry_on,
                               idempotency_key=idempotency_key)
        if not isinstance(wait_for_dealer, bool):
            raise ValidationError("VALIDATION_ERROR", "wait_for_dealer must be True or False", {"path": "wait_for_dealer"})
        payload = encode_json(list(args))
        self._require_tasks("submit")
        request_id = next(self._ids)
        header = {"id": request_id, "method": method}
        if options:
            header["options"] = options
        if wait_for_dealer:
            header["waitForDealer"] = True
        self._send("SUBMIT", header, payload)
        return self._task(self._result(request_id, time.monotonic() + self.timeout), "submit")

    def get_task(self, task_id):
        """The task: state, progress, result or error, attempts and times. TaskNotFoundError for an unknown id."""
        return self._task(self._task_op("get_task", {"op": "get", "taskId": check_task_id(task_id)}), "get_task")

    get_task_status = get_task  # the seed's name

    def wait_task(self, task_id, timeout=30):
        """The task's result once it succeeded. Raises its error rebuilt by code (RemoteError, CancelledError for a
        revoked task, CallTimeoutError for an expired one, ...) when it ended otherwise, and CallTimeoutError
        (a TimeoutError) when it is not final within `timeout` seconds: the task goes on. `timeout=None` waits
        as long as it takes."""
        fields = {"op": "wait", "taskId": check_task_id(task_id)}
        deadline = None
        if timeout is not None:
            fields["timeoutMs"] = min(2_147_483_647, max(1, seconds_to_ms("timeout", timeout, path="timeout")))
            # The router answers TIMEOUT at timeoutMs; the local deadline, a little later, covers a silent router.
            deadline = time.monotonic() + timeout + 5
        task = self._task(self._task_op("wait_task", fields, deadline), "wait_task")
        if task["state"] == "succeeded":
            return task.get("result")
        if task["state"] not in FINAL_TASK_STATES:
            raise ProtocolError("PROTOCOL_ERROR", f"the router answered wait_task with a task still {task['state']}",
                                {"reason": "BAD_ANSWER"})
        raise task_failure(task)

    def revoke_task(self, task_id, terminate=False):
        """Revokes the task and returns it: not started, it never runs; running, its dealer gets CANCEL. A final task is unchanged."""
        fields = {"op": "revoke", "taskId": check_task_id(task_id)}
        if not isinstance(terminate, bool):
            raise ValidationError("VALIDATION_ERROR", "terminate must be True or False", {"path": "terminate"})
        if terminate:
            fields["terminate"] = True
        return self._task(self._task_op("revoke_task", fields), "revoke_task")

    def list_tasks(self, state=None, method=None, limit=50, cursor=None):
        """One page of tasks, newest first: {"tasks": [task, ...], "cursor"?}; pass `cursor` back for the next page."""
        fields = {"op": "list"}
        if state is not None:
            if state not in TASK_STATES:
                raise ValidationError("VALIDATION_ERROR", f"state must be one of {', '.join(TASK_STATES)}", {"path": "state"})
            fields["state"] = state
        if method is not None:
            if not isinstance(method, str):
                raise ValidationError("VALIDATION_ERROR", "method must be a string like Service.method", {"path": "method"})
            fields["method"] = method
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("VALIDATION_ERROR", "limit must be an integer from 1 to 1000", {"path": "limit"})
        fields["limit"] = limit
        if cursor is not None:
            if not isinstance(cursor, str):
                raise ValidationError("VALIDATION_ERROR", "cursor must be the string a previous page gave", {"path": "cursor"})
            fields["cursor"] = cursor
        page = self._task_op("list_tasks", fields)
        if not isinstance(page, dict) or not isinstance(page.get("tasks"), list) or not isinstance(page.get("cursor", ""), str):
            raise ProtocolError("PROTOCOL_ERROR", "the router's answer to list_tasks is not a page of tasks", {"reason": "BAD_ANSWER"})
        for task in page["tasks"]:
            self._task(task, "list_tasks")
        return page

    def watch_task(self, task_id, timeout=None):
        """Yields the task's events ({state, progress?, at}) as they happen, from where it stands now to its final
        state (TASK watch → CHUNK… END). Leaving the loop early stops the watch (CANCEL). `timeout` bounds the
        whole watch in seconds (CallTimeoutError); None watches until the end. The id is checked at once; the
        TASK goes out when iteration starts."""
        check_task_id(task_id)
        if timeout is not None:
            seconds_to_ms("timeout", timeout, path="timeout")
        return self._watch(task_id, timeout)

    def _watch(self, task_id, timeout):
        self._require_tasks("watch_task")
        request_id = next(self._ids)
        self._send("TASK", {"id": request_id, "op": "watch", "taskId": task_id})
        deadline = None if timeout is None else time.monotonic() + timeout
        received = 0  # events so far; the next seq must equal it
        over = False  # whether the watch got its terminal reply
        try:
            while True:
                kind, header, payload = self._next_for(request_id, deadline)
                if kind in ("END", "ERROR"):
                    over = True
                if kind == "ERROR":
                    raise self._error(header)
                if kind == "END":
                    if header.get("count") != received:
                        raise ProtocolError("PROTOCOL_ERROR", f"END says {header.get('count')} events, {received} arrived",
                                            {"reason": "SCHEMA", "kind": "END", "path": "count", "id": request_id})
                    return
                if kind != "CHUNK":
                    over = True
                    raise self._unexpected(kind, request_id)
                if header.get("seq") != received:
                    raise ProtocolError("PROTOCOL_ERROR", f"CHUNK seq {header.get('seq')} where {received} was due",
                                        {"reason": "SCHEMA", "kind": "CHUNK", "path": "seq", "id": request_id})
                received += 1
                event = self._payload(payload, request_id)
                if not isinstance(event, dict) or event.get("state") not in TASK_STATES or not isinstance(event.get("at"), str):
                    raise ProtocolError("PROTOCOL_ERROR", f"event {received - 1} of watch_task is not {{state, progress?, at}}",
                                        {"reason": "BAD_ANSWER", "id": request_id})
                yield event
        finally:
            if not over:
                self._cancel(request_id)  # left early, timed out or failed: the router stops watching (§15.3)

    def _require_tasks(self, what):
        """HELLO if needed; RevisionError unless the revision in force has tasks (§12: send only what it allows)."""
        self._ensure_welcomed()
        if self.revision < TASKS_REVISION:
            raise RevisionError("UNSUPPORTED_REVISION",
                                f"{what} needs protocol revision {TASKS_REVISION}; the router at {self.address} speaks revision {self.revision}",
                                {"needed": TASKS_REVISION, "version": self.revision})

    def _task_op(self, what, fields, deadline=_CLIENT_TIMEOUT):
        """A TASK request with `fields`; its RESULT's value, or its ERROR raised. By default the client's timeout
        bounds it (the router answers these at once); `deadline` None waits as long as it takes."""
        self._require_tasks(what)
        request_id = next(self._ids)
        self._send("TASK", {"id": request_id, **fields})
        if deadline is _CLIENT_TIMEOUT:
            deadline = time.monotonic() + self.timeout
        return self._result(request_id, deadline)

    @staticmethod
    def _task(value, what):
        """`value` when it is a task as §15.4 describes it (the fields a caller branches on), else ProtocolError."""
        if not (isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("method"), str)
                and value.get("state") in TASK_STATES and isinstance(value.get("attempts"), int)
                and isinstance(value.get("createdAt"), str)):
            raise ProtocolError("PROTOCOL_ERROR", f"the router's answer to {what} is not a task", {"reason": "BAD_ANSWER"})
        error = value.get("error")
        if error is not None and not (isinstance(error, dict) and isinstance(error.get("code"), str)):
            raise ProtocolError("PROTOCOL_ERROR", f"the error of task {value['id']} has no code", {"reason": "BAD_ANSWER"})
        return value

    # ---- connection ----

    def _hello(self):
        """HELLO, then WELCOME or an ERROR without id (§3, §4.1)."""
        hello = {"role": "client", "version": PROTOCOL_VERSION}
        if self.api_key is not None:
            hello["apiKey"] = self.api_key
        self._send("HELLO", hello)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message is None:
                raise CallTimeoutError("TIMEOUT", f"no WELCOME from {self.address} within {self.timeout} s",
                                       {"timeoutMs": int(self.timeout * 1000)})
            kind, header, _ = message
            if kind == "WELCOME":
                self.welcome = header
                return
            if kind == "ERROR" and "id" not in header:
                raise error_from_header(header)
            # Anything else is a late reply from before a reconnection: ignore it.

    def _ensure_welcomed(self):
        self._check_monitor()
        if self.welcome is None:
            self._hello()

    def _check_monitor(self):
        """Reads pending monitor events; True when the connection dropped since the last look."""
        dropped = False
        while self._monitor.poll(0):
            if recv_monitor_message(self._monitor)["event"] == zmq.EVENT_DISCONNECTED:
                dropped = True
        if dropped:
            self.welcome = None  # the reconnected socket is a new connection: HELLO again
        return dropped

    # ---- messages ----

    def _send(self, kind, header, payload=None):
        frames = [PROTOCOL_ID, kind.encode("ascii"), encode_json(header)]
        if payload is not None:
            frames.append(payload)
        try:
            self._socket.send_multipart(frames)
        except zmq.Again:
            raise ConnectionLostError("CONNECTION_LOST", f"could not send {kind} to {self.address}") from None

    def _receive(self, deadline):
        """The next well-formed message as (kind, header, payload frame or None), or None at the deadline (None: none)."""
        while True:
            if deadline is None:  # no deadline: a watch or a wait without timeout (a dead router is still noticed)
                wait_ms = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait_ms = remaining * 1000
            ready = dict(self._poller.poll(wait_ms))
            if self._socket in ready:
                message = self._decode(self._socket.recv_multipart())
                if message is not None:
                    return message
            elif self._monitor in ready and self._check_monitor():
                raise ConnectionLostError("CONNECTION_LOST", f"the connection to {self.address} closed")

    @staticmethod
    def _decode(frames):
        """Frames → (kind, header, payload); None for a message to drop (§2: receivers drop malformed ones)."""
        if len(frames) not in (3, 4) or frames[0] != PROTOCOL_ID:
            return None
        try:
            kind = frames[1].decode("ascii")
            header = decode_json(frames[2])
        except ValueError:
            return None
        if not isinstance(header, dict) or (len(frames) == 4) != (kind in PAYLOAD_KINDS):
            return None
        return kind, header, frames[3] if len(frames) == 4 else None

    def _request(self, method, args, timeout, stream=False, credit=None):
        self._ensure_welcomed()
        request_id = next(self._ids)
        header = {"id": request_id, "method": method, "timeoutMs": max(1, int(timeout * 1000))}
        if stream:
            header["stream"] = True
            header["credit"] = credit
        self._send("REQUEST", header, encode_json(list(args)))
        return request_id

    def _info(self, topic):
        self._ensure_welcomed()
        request_id = next(self._ids)
        self._send("INFO", {"id": request_id, "topic": topic})
        return self._result(request_id, time.monotonic() + self.timeout)

    def _result(self, request_id, deadline):
        """The value of a unary call or INFO: its RESULT payload, or its ERROR raised."""
        try:
            kind, header, payload = self._next_for(request_id, deadline)
        except VoidRailError:
            self._cancel(request_id)  # still outstanding on the router: give it up (§8.2)
            raise
        if kind == "RESULT":
            return self._payload(payload, request_id)
        if kind == "ERROR":
            raise self._error(header)
        self._cancel(request_id)
        raise self._unexpected(kind, request_id)

    def _next_for(self, request_id, deadline):
        """The next message about `request_id`, its ERROR included. Raises CallTimeoutError at the
        deadline, ConnectionLostError when the connection drops, and an ERROR without id."""
        while True:
            message = self._receive(deadline)
            if message is None:
                raise CallTimeoutError("TIMEOUT", f"no reply to request {request_id} in time", {"id": request_id})
            kind, header, payload = message
            if header.get("id") == request_id:
                return kind, header, payload
            if kind == "ERROR" and "id" not in header:
                if (header.get("data") or {}).get("reason") == "ALREADY_HELLO":
                    # A HELLO that timed out while the router was away went out later, and the
                    # repeated one was refused: we are welcomed, nothing is wrong.
                    continue
                # Otherwise it concerns the connection; with one call at a time it is about what
                # this call sent (e.g. a CREDIT after a reconnection we had not noticed yet).
                raise self._error(header)
            # Replies to ids we gave up on, and stray WELCOMEs, are dropped (§6).

    def _error(self, header):
        error = error_from_header(header)
        if error.code == "AUTH_FAILED":
            self.welcome = None  # not authenticated on this connection: HELLO again before the next call
        return error

    def _payload(self, payload, request_id):
        try:
            return decode_json(payload)
        except ValueError as error:
            raise ProtocolError("PROTOCOL_ERROR", f"payload of reply {request_id} is not JSON: {error}",
                                {"reason": "BAD_JSON", "frame": 3, "id": request_id}) from None

    def _cancel(self, request_id):
        try:
            self._send("CANCEL", {"id": request_id})
        except (VoidRailError, zmq.ZMQError):
            pass  # nothing to cancel on a connection that is gone (or a client already closed)

    @staticmethod
    def _unexpected(kind, request_id):
        return ProtocolError("PROTOCOL_ERROR", f"unexpected {kind} for request {request_id}",
                             {"reason": "UNEXPECTED_KIND", "kind": kind, "id": request_id})


# ---- the script ----------------------------------------------------------------------------------


def emit(record):
    print(json.dumps(record, separators=(",", ":")), flush=True)


def error_record(error):
    # "class" is the Python class the code was rebuilt as, so a reader sees both.
    return {"code": error.code, "message": error.message, "data": error.data, "class": type(error).__name__}


def demo(client):
    emit({"op": "invoke", "method": "EchoService.echo", "result": client.invoke("EchoService.echo", "Hello from Python")})
    emit({"op": "invoke", "method": "EchoService.add", "result": client.invoke("EchoService.add", 5, 3)})
    # A window of 2 makes the router see CREDIT messages even for 5 numbers.
    numbers = list(client.stream("EchoService.streamNumbers", 0, 5, window=2))
    emit({"op": "stream", "method": "EchoService.streamNumbers", "result": numbers})
    emit({"op": "discover_services", "result": client.discover_services()})
    emit({"op": "router_info", "result": client.router_info()})
    emit({"op": "queue_status", "result": client.queue_status()})


LAST = "last"  # as a task id on the command line: the task the latest --submit of this run stored
TASK_ID_FLAGS = {"--get-task": "get_task", "--wait-task": "wait_task", "--watch-task": "watch_task", "--revoke-task": "revoke_task"}


def _actions(namespace):
    if namespace.actions is None:
        namespace.actions = []
    return namespace.actions


class CallAction(argparse.Action):
    """--call / --submit METHOD [JSON_ARG ...]: one call or task, each argument a JSON word of its own."""

    def __call__(self, parser, namespace, values, option_string=None):
        method, *words = values
        try:
            args = [json.loads(word) for word in words]
        except ValueError as error:
            parser.error(f"{option_string} arguments must be JSON: {error}")
        op = "invoke" if option_string == "--call" else "submit"
        _actions(namespace).append({"op": op, "method": method, "args": args, "args_given": bool(words), "options": {}})


class ArgsAction(argparse.Action):
    """--args JSON, for the --call or --submit before it: an array is the argument list, any other value the one argument."""

    def __call__(self, parser, namespace, value, option_string=None):
        actions = _actions(namespace)
        if not actions or actions[-1]["op"] not in ("invoke", "submit"):
            parser.error("--args goes after the --call or --submit it is for")
        call = actions[-1]
        if call["args_given"]:
            parser.error(f"{call['method']} already has its arguments: give them after --call or with --args, not both")
        try:
            parsed = json.loads(value)
        except ValueError as error:
            parser.error(f"--args is not JSON ({error}): for a string use --args '\"text\"', two arguments --args '[5, 3]'")
        call["args"] = parsed if isinstance(parsed, list) else [parsed]
        call["args_given"] = True


class TaskAction(argparse.Action):
    """--get-task / --wait-task / --watch-task / --revoke-task ID (or `last`), and --list-tasks."""

    def __call__(self, parser, namespace, value, option_string=None):
        actions = _actions(namespace)
        if option_string == "--list-tasks":
            actions.append({"op": "list_tasks", "options": {}})
            return
        if value == LAST and not any(action["op"] == "submit" for action in actions):
            parser.error(f"{option_string} {LAST} needs a --submit before it")
        actions.append({"op": TASK_ID_FLAGS[option_string], "task_id": value, "options": {}})


class OptionAction(argparse.Action):
    """An option of the action before it (e.g. --priority for a --submit), stored under the method's keyword `key`."""

    def __init__(self, option_strings, dest, key, ops, append=False, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.key, self.ops, self.append = key, ops, append

    def __call__(self, parser, namespace, value, option_string=None):
        actions = _actions(namespace)
        if not actions or actions[-1]["op"] not in self.ops:
            flags = " or ".join({"submit": "--submit", "wait_task": "--wait-task", "revoke_task": "--revoke-task",
                                 "list_tasks": "--list-tasks"}[op] for op in self.ops)
            parser.error(f"{option_string} goes after the {flags} it is for")
        options = actions[-1]["options"]
        if self.nargs == 0:
            value = True
        if self.append:
            options.setdefault(self.key, []).append(value)
        elif self.key in options:
            parser.error(f"{option_string} is given twice for the same {actions[-1]['op']}")
        else:
            options[self.key] = value


def run_action(client, action, last_task):
    """Runs one command-line action, printing its records; returns the id `last` stands for after it."""
    op = action["op"]
    if op == "invoke":
        method = action["method"]
        try:
            emit({"op": op, "method": method, "result": client.invoke(method, *action["args"])})
        except VoidRailError as error:
            emit({"op": op, "method": method, "error": error_record(error)})
        return last_task
    if op == "submit":
        method = action["method"]
        try:
            task = client.submit(method, *action["args"], **action["options"])
        except VoidRailError as error:
            emit({"op": op, "method": method, "error": error_record(error)})
            return None  # a later `last` must not silently mean an older task
        emit({"op": op, "method": method, "result": task["id"], "state": task["state"]})
        return task["id"]
    if op == "list_tasks":
        try:
            emit({"op": op, "result": client.list_tasks(**action["options"])})
        except VoidRailError as error:
            emit({"op": op, "error": error_record(error)})
        return last_task
    task_id = action["task_id"]
    try:
        if task_id == LAST:
            if last_task is None:
                raise ValidationError("VALIDATION_ERROR", f"`{LAST}` names no task: the --submit before it failed", {"path": "taskId"})
            task_id = last_task
        if op == "watch_task":
            for event in client.watch_task(task_id):
                emit({"op": op, "task": task_id, "event": event})
            emit({"op": op, "task": task_id, "end": True})
        else:
            emit({"op": op, "task": task_id, "result": getattr(client, op)(task_id, **action["options"])})
    except VoidRailError as error:
        emit({"op": op, "task": task_id, "error": error_record(error)})
    return last_task


def main(argv=None):
    parser = argparse.ArgumentParser(description="VoidRail Python client: calls methods and runs background tasks through a router, or runs a demo.")
    parser.add_argument("address", help="router endpoint, e.g. tcp://127.0.0.1:5555 or ipc:///tmp/voidrail.sock")
    parser.add_argument("--api-key", help="client API key, when the router requires one")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per call (default 10)")
    parser.add_argument("--call", nargs="+", action=CallAction, dest="actions", default=None, metavar=("METHOD", "JSON_ARG"),
                        help="call METHOD (Service.method) and print its result or error; arguments as JSON words or --args")
    parser.add_argument("--args", action=ArgsAction, dest="actions", metavar="JSON",
                        help="arguments of the --call or --submit before it, as voidrail client takes them: '[5, 3]' is two, '\"hi\"' one")
    parser.add_argument("--demo", action="store_true",
                        help="run the demo (needs EchoService) before the other actions; the default when none is given")

    tasks = parser.add_argument_group("background tasks (router revision 2); ID may be `last`, the task the latest --submit stored")
    tasks.add_argument("--submit", nargs="+", action=CallAction, dest="actions", metavar=("METHOD", "JSON_ARG"),
                       help="submit METHOD as a task and print its id; arguments as JSON words or --args; options below follow it")
    for flag, key, kind, metavar, what in (
            ("--priority", "priority", int, "N", "0..9, higher first (default 5)"),
            ("--countdown", "countdown", float, "SECONDS", "seconds before it may start"),
            ("--eta", "eta", str, "TIME", "when it may start, ISO 8601"),
            ("--expires", "expires", float, "SECONDS", "seconds after submit: not started by then, it ends expired"),
            ("--time-limit", "time_limit", float, "SECONDS", "seconds per attempt"),
            ("--retries", "retries", int, "N", "further attempts after a failure"),
            ("--retry-delay", "retry_delay", float, "SECONDS", "seconds before a retry"),
            ("--idempotency-key", "idempotency_key", str, "KEY", "the same key gives the same task")):
        tasks.add_argument(flag, action=OptionAction, dest="actions", key=key, ops=("submit",), type=kind, metavar=metavar,
                           help=f"of --submit: {what}")
    tasks.add_argument("--backoff", action=OptionAction, dest="actions", key="backoff", ops=("submit",),
                       choices=("fixed", "exponential"), help="of --submit: how retry delays grow")
    tasks.add_argument("--retry-on", action=OptionAction, dest="actions", key="retry_on", ops=("submit",), append=True,
                       metavar="CODE", help="of --submit: an error code or name that is retried (repeat for more)")
    tasks.add_argument("--wait-for-dealer", action=OptionAction, dest="actions", key="wait_for_dealer", ops=("submit",), nargs=0,
                       help="of --submit: store it even if no dealer offers the method now")
    for flag, what in (("--get-task", "print the task: state, progress, result or error, attempts, times"),
                       ("--wait-task", "wait until the task is final; print its result or error"),
                       ("--watch-task", "print the task's events as they happen, up to its final state"),
                       ("--revoke-task", "revoke the task; print it")):
        tasks.add_argument(flag, action=TaskAction, dest="actions", metavar="ID", help=what)
    tasks.add_argument("--wait-timeout", action=OptionAction, dest="actions", key="timeout", ops=("wait_task",), type=float,
                       metavar="SECONDS", help="of --wait-task: give up after this long (default 30); the task goes on")
    tasks.add_argument("--terminate", action=OptionAction, dest="actions", key="terminate", ops=("revoke_task",), nargs=0,
                       help="of --revoke-task: also stop a method that ignores its signal (reserved by the router)")
    tasks.add_argument("--list-tasks", action=TaskAction, dest="actions", nargs=0, help="print one page of tasks, newest first")
    tasks.add_argument("--state", action=OptionAction, dest="actions", key="state", ops=("list_tasks",), choices=TASK_STATES,
                       help="of --list-tasks: only tasks in this state")
    tasks.add_argument("--method", action=OptionAction, dest="actions", key="method", ops=("list_tasks",), metavar="METHOD",
                       help="of --list-tasks: only tasks of this method")
    tasks.add_argument("--limit", action=OptionAction, dest="actions", key="limit", ops=("list_tasks",), type=int, metavar="N",
                       help="of --list-tasks: at most this many (1..1000, default 50)")
    tasks.add_argument("--cursor", action=OptionAction, dest="actions", key="cursor", ops=("list_tasks",), metavar="CURSOR",
                       help="of --list-tasks: the cursor of the previous page")
    options = parser.parse_args(argv)
    actions = options.actions or []

    try:
        with VoidRailClient(options.address, api_key=options.api_key, timeout=options.timeout) as client:
            # The demo calls EchoService: run it only when asked, so that the actions work against any router.
            if options.demo or not actions:
                demo(client)
            last_task = None
            for action in actions:
                last_task = run_action(client, action, last_task)
    except VoidRailError as error:
        data = "" if error.data is None else f" {json.dumps(error.data, separators=(',', ':'))}"
        print(f"client.py: {error.code}: {error.message}{data}", file=sys.stderr)
        return 1
    except (zmq.ZMQError, OSError, ValueError) as error:
        print(f"client.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
