"""A dealer's heartbeat connection (PROTOCOL.md §4.13, §10, §15.5): BEAT out, TERMINATE in, on a thread of its own.

Liveness does not need it (libzmq answers the router's PINGs on its I/O thread, GIL or not): it
exists so that a revoke with `terminate: true` can end a process whose method ignores its
cancellation. Python cannot interrupt a thread, so a plain `def` method stuck in a loop, a
blocking read or `time.sleep` would otherwise run on. The router sends TERMINATE to the
connection the BEATs come from; this thread, which the methods never occupy (it waits in
libzmq's poll with the GIL released), then sends its process SIGKILL and a supervisor starts a
new one. The thread needs the GIL for that step: a method that holds the GIL in one long C call
is ended when that call returns.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Dict, Optional

import zmq

from .connection import configure_socket
from .errors import ProtocolError
from .protocol import decode_message, encode_message

log = logging.getLogger("voidrail.dealer")

# Without router PINGs (heartbeatIntervalMs 0) BEATs still go out this often: the router learns from them where TERMINATE goes.
DEFAULT_BEAT_INTERVAL_S = 1.0


class HeartbeatThread:
    """Sends `BEAT {token}` every `interval` seconds on a DEALER connection of its own; SIGKILLs the process on a
    `TERMINATE` naming the current token. `vouch_for` sets the token of each new registration (thread-safe)."""

    def __init__(self, router_address: str, socket_options: Dict[str, Any], name: str) -> None:
        self._router_address = router_address
        self._socket_options = socket_options
        self._token: Optional[str] = None
        self._interval = DEFAULT_BEAT_INTERVAL_S
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-heartbeat", daemon=True)
        self._started = False

    def vouch_for(self, token: str, interval_ms: Any) -> None:
        """A new WELCOME: BEATs now carry its token (a TERMINATE for an older registration is ignored)."""
        self._token = token
        if isinstance(interval_ms, int) and not isinstance(interval_ms, bool) and interval_ms > 0:
            self._interval = max(0.01, interval_ms / 1000)
        if not self._started:
            self._started = True
            self._thread.start()
        self._wake.set()  # a first BEAT at once: the router knows where TERMINATE goes from then on

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._started and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        socket = zmq.Context.instance().socket(zmq.DEALER)
        try:
            configure_socket(socket, **self._socket_options)
            # A beat the router cannot take now is dropped, not queued to arrive late in a burst.
            socket.setsockopt(zmq.SNDHWM, 4)
            socket.connect(self._router_address)
            poller = zmq.Poller()
            poller.register(socket, zmq.POLLIN)
            while not self._stop.is_set():
                self._send_beat(socket)
                self._wake.clear()
                # Wait one interval for a TERMINATE, in slices short enough to notice vouch_for/stop.
                remaining = self._interval
                while remaining > 0 and not self._stop.is_set() and not self._wake.is_set():
                    step = min(remaining, 0.1)
                    if poller.poll(int(step * 1000)):
                        self._receive(socket)
                    remaining -= step
        except zmq.ZMQError as error:
            if not self._stop.is_set():
                log.warning("heartbeat connection failed: %s", error)
        finally:
            socket.close(0)

    def _send_beat(self, socket: zmq.Socket) -> None:
        token = self._token
        if token is None:
            return
        try:
            socket.send_multipart(encode_message("BEAT", {"token": token}), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass

    def _receive(self, socket: zmq.Socket) -> None:
        while True:
            try:
                frames = socket.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = decode_message(frames)
            except ProtocolError:
                continue  # the router writes here only to terminate; anything else is dropped
            if message.kind != "TERMINATE" or self._token is None or message.header.get("token") != self._token:
                continue
            reason = message.header.get("reason")
            log.error("terminated by the router: %s", reason if isinstance(reason, str) else "revoked with terminate")
            for handler in logging.getLogger().handlers + log.handlers:
                try:
                    handler.flush()
                except Exception:  # noqa: BLE001 - the process ends next, whatever a handler does
                    pass
            os.kill(os.getpid(), signal.SIGKILL)
