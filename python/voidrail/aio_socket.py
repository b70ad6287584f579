"""A pyzmq socket driven by an asyncio loop through its file descriptor, without zmq.asyncio's per-message futures.

zmq.asyncio makes a future per send and per receive and re-polls after each: measured here it
was most of a call's cost. This wrapper sends at once when the socket can take the message
(non-blocking; messages queue in order behind one that could not go), and hands every message
that has arrived to a callback as soon as the loop sees the socket's ZMQ_FD readable.

ZMQ_FD is edge-like: it signals that ZMQ_EVENTS may have changed, and any send or receive can
consume that signal. So after reading or writing, the events are looked at again until nothing is
left to do, and a send schedules one more look on the next turn of the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Sequence, cast

import zmq

log = logging.getLogger("voidrail")

OnMessage = Callable[[List[bytes]], None]
# Plain ints: pyzmq's enum flags cost an enum operation per use, and these run per message.
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)


class LoopSocket:
    """`socket` read and written from `loop`: `on_message` gets each received multipart message; `send` never blocks."""

    def __init__(self, socket: zmq.Socket, loop: asyncio.AbstractEventLoop, on_message: OnMessage) -> None:
        self.socket = socket
        self._loop = loop
        self._on_message = on_message
        self._outbox: Deque[Sequence[Any]] = deque()
        self._drained: Optional[asyncio.Event] = None
        self._check_scheduled = False
        self._closed = False
        self._fd = cast(int, socket.getsockopt(zmq.FD))
        loop.add_reader(self._fd, self._service)
        # The FD only signals changes: what arrived before add_reader (or whose signal another call consumed) is looked for now.
        self._schedule_check()

    def send(self, frames: Sequence[Any]) -> None:
        """Sends now if the socket takes it, else queues it (in order) until it does. Raises ZMQError on a closed socket."""
        if self._outbox or not self._send_now(frames):
            self._outbox.append(frames)
        self._schedule_check()

    def _send_now(self, frames: Sequence[Any]) -> bool:
        """One multipart message without blocking; False when the socket cannot take it now (nothing was sent).
        libzmq takes a multipart message whole or not at all: once its first frame is in, the others go too."""
        send = self.socket.send
        last = len(frames) - 1
        try:
            send(frames[0], _SNDMORE_NOBLOCK if last else _NOBLOCK, copy=False)
        except zmq.Again:
            return False
        for index in range(1, last + 1):
            send(frames[index], _SNDMORE_NOBLOCK if index < last else _NOBLOCK, copy=False)
        return True

    async def send_and_wait(self, frames: Sequence[Any]) -> None:
        """Sends, then waits until the queue behind it is empty: backpressure for a producer (stream chunks)."""
        self.send(frames)
        while self._outbox and not self._closed:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()

    def close(self, linger: int = 0) -> None:
        if self._closed:
            return
        if self._outbox and linger != 0:
            self._flush()  # what libzmq takes now still leaves within the linger
        self._closed = True
        try:
            self._loop.remove_reader(self._fd)
        except (ValueError, OSError):
            pass
        self.socket.close(linger)
        if self._drained is not None:
            self._drained.set()

    def _schedule_check(self) -> None:
        if not self._check_scheduled and not self._closed:
            self._check_scheduled = True
            self._loop.call_soon(self._service)

    def _service(self) -> None:
        self._check_scheduled = False
        socket = self.socket
        while not self._closed:
            try:
                events = cast(int, socket.getsockopt(_EVENTS))
            except zmq.ZMQError:
                return  # closed under us
            progressed = False
            if events & _POLLOUT and self._outbox:
                progressed = self._flush()
            if events & _POLLIN:
                progressed = True
                recv = socket.recv
                for _ in range(256):  # then look at the outbox and the loop's other work again
                    try:
                        frames = [recv(_NOBLOCK)]
                    except zmq.Again:
                        break
                    while socket.getsockopt(_RCVMORE):
                        frames.append(recv(_NOBLOCK))
                    try:
                        self._on_message(frames)
                    except Exception:  # noqa: BLE001 - one bad message must not stop the reading (its signal is consumed)
                        log.exception("voidrail: a received message could not be handled")
                    if self._closed:
                        return
            if not progressed:
                return

    def _flush(self) -> bool:
        sent = False
        while self._outbox:
            if not self._send_now(self._outbox[0]):
                break
            self._outbox.popleft()
            sent = True
        if not self._outbox and self._drained is not None:
            self._drained.set()
            self._drained = None
        return sent
