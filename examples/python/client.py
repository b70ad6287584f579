#!/usr/bin/env python3
"""A VoidRail client in Python, written from docs/PROTOCOL.md alone, on pyzmq.

It opens one DEALER socket to the router and speaks VRP1 over it: every message is the frames
["VRP1", KIND, header JSON, payload JSON?] (PROTOCOL.md §2). It says HELLO and waits for WELCOME,
then sends REQUEST / INFO / CREDIT / CANCEL and reads RESULT / CHUNK / END / ERROR. Calls run one
at a time; replies for ids it no longer waits for are dropped (§6).

    from client import VoidRailClient, VoidRailError

    with VoidRailClient("tcp://127.0.0.1:5555", api_key=None, timeout=30) as client:
        client.invoke("EchoService.echo", "hi")                    # -> "hi"
        for n in client.stream("EchoService.streamNumbers", 0, 5):  # -> 0 1 2 3 4
            print(n)
        client.discover_services()                                  # INFO "services"

As a script it calls what `--call` names, or without `--call` runs a small demo against a router
that serves EchoService; it prints one JSON line per result:

    /usr/bin/python3 examples/python/client.py tcp://127.0.0.1:5555 [--api-key KEY]
        [--call METHOD [JSON_ARG ...]] [--call METHOD --args JSON] ... [--demo]

A call's arguments are either JSON words after its method, or one `--args` after it that reads
as `voidrail client --args` does: a JSON array is the argument list, any other JSON value the one
argument. `--demo` runs the demo before the calls. Each call's result or error is printed as a
JSON line (an error there is an outcome to report, not a failure of the script). Exit status: 0
on success, 1 on a VoidRail error (one line on stderr: "client.py: CODE: message ..."), 2 on a
usage or local error.

Needs pyzmq (Debian: apt-get install python3-zmq). A router to try it against:
    ./node_modules/.bin/bun test/fixtures/python-target.ts   (prints its address)
"""

import argparse
import itertools
import json
import sys
import time

try:
    import zmq
    from zmq.utils.monitor import recv_monitor_message
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("client.py: pyzmq is not installed for this Python (Debian: apt-get install python3-zmq)")

PROTOCOL_ID = b"VRP1"
PROTOCOL_VERSION = 1
PAYLOAD_KINDS = {"REQUEST", "RESULT", "CHUNK"}  # the kinds with a 4th frame (§2)


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
class CallTimeoutError(VoidRailError): pass       # TIMEOUT (TimeoutError in TypeScript)
class CancelledError(VoidRailError): pass
class DealerLostError(VoidRailError): pass
class AuthError(VoidRailError): pass
class ValidationError(VoidRailError): pass
class RemoteError(VoidRailError): pass
class ProtocolError(VoidRailError): pass
class ShuttingDownError(VoidRailError): pass
class ConnectionLostError(VoidRailError): pass    # CONNECTION_LOST (ConnectionError in TypeScript)

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
        """The next well-formed message as (kind, header, payload frame or None), or None at the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready = dict(self._poller.poll(remaining * 1000))
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
        except VoidRailError:
            pass  # nothing to cancel on a connection that is gone

    @staticmethod
    def _unexpected(kind, request_id):
        return ProtocolError("PROTOCOL_ERROR", f"unexpected {kind} for request {request_id}",
                             {"reason": "UNEXPECTED_KIND", "kind": kind, "id": request_id})


# ---- the script ----------------------------------------------------------------------------------


def emit(record):
    print(json.dumps(record, separators=(",", ":")), flush=True)


def error_record(error):
    return {"code": error.code, "message": error.message, "data": error.data}


def demo(client):
    emit({"op": "invoke", "method": "EchoService.echo", "result": client.invoke("EchoService.echo", "Hello from Python")})
    emit({"op": "invoke", "method": "EchoService.add", "result": client.invoke("EchoService.add", 5, 3)})
    # A window of 2 makes the router see CREDIT messages even for 5 numbers.
    numbers = list(client.stream("EchoService.streamNumbers", 0, 5, window=2))
    emit({"op": "stream", "method": "EchoService.streamNumbers", "result": numbers})
    emit({"op": "discover_services", "result": client.discover_services()})
    emit({"op": "router_info", "result": client.router_info()})
    emit({"op": "queue_status", "result": client.queue_status()})


class CallAction(argparse.Action):
    """--call METHOD [JSON_ARG ...]: one call, each argument a JSON word of its own."""

    def __call__(self, parser, namespace, values, option_string=None):
        method, *words = values
        try:
            args = [json.loads(word) for word in words]
        except ValueError as error:
            parser.error(f"--call arguments must be JSON: {error}")
        if namespace.calls is None:
            namespace.calls = []
        namespace.calls.append({"method": method, "args": args, "args_given": bool(words)})


class ArgsAction(argparse.Action):
    """--args JSON, for the --call before it: an array is the argument list, any other value the one argument."""

    def __call__(self, parser, namespace, value, option_string=None):
        if not namespace.calls:
            parser.error("--args goes after the --call it is for")
        call = namespace.calls[-1]
        if call["args_given"]:
            parser.error(f"{call['method']} already has its arguments: give them after --call or with --args, not both")
        try:
            parsed = json.loads(value)
        except ValueError as error:
            parser.error(f"--args is not JSON ({error}): for a string use --args '\"text\"', two arguments --args '[5, 3]'")
        call["args"] = parsed if isinstance(parsed, list) else [parsed]
        call["args_given"] = True


def main(argv=None):
    parser = argparse.ArgumentParser(description="VoidRail Python client: calls methods through a router, or runs a demo.")
    parser.add_argument("address", help="router endpoint, e.g. tcp://127.0.0.1:5555 or ipc:///tmp/voidrail.sock")
    parser.add_argument("--api-key", help="client API key, when the router requires one")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per call (default 10)")
    parser.add_argument("--call", nargs="+", action=CallAction, dest="calls", default=None, metavar=("METHOD", "JSON_ARG"),
                        help="call METHOD (Service.method) and print its result or error; arguments as JSON words or --args")
    parser.add_argument("--args", action=ArgsAction, dest="calls", metavar="JSON",
                        help="arguments of the --call before it, as voidrail client takes them: '[5, 3]' is two, '\"hi\"' one")
    parser.add_argument("--demo", action="store_true",
                        help="run the demo (needs EchoService) before the calls; the default when no --call is given")
    options = parser.parse_args(argv)
    calls = options.calls or []

    try:
        with VoidRailClient(options.address, api_key=options.api_key, timeout=options.timeout) as client:
            # The demo calls EchoService: run it only when asked, so that --call works against any router.
            if options.demo or not calls:
                demo(client)
            for call in calls:
                method, args = call["method"], call["args"]
                try:
                    emit({"op": "invoke", "method": method, "result": client.invoke(method, *args)})
                except VoidRailError as error:
                    emit({"op": "invoke", "method": method, "error": error_record(error)})
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
