"""The Python service the tests run (`python -m voidrail dealer --module peer_service`): one method per call kind and failure mode."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import threading
import time

from voidrail import CallContext, ServiceDealer, ValidationError, VoidRailError, service_method


class OutOfStock(Exception):
    pass


def hold_gil(seconds: int) -> None:
    """Blocks in native code *holding the GIL* for `seconds`: ctypes.PyDLL calls C without releasing the GIL
    (ctypes.CDLL would release it, as time.sleep does). One call, so no other thread runs meanwhile."""
    libc = ctypes.PyDLL(ctypes.util.find_library("c"))
    libc.sleep.argtypes = [ctypes.c_uint]
    libc.sleep(seconds)


class PyService(ServiceDealer):
    @service_method(description="Returns its argument")
    def echo(self, value):
        return value

    @service_method
    async def async_echo(self, value):
        await asyncio.sleep(0)
        return value

    @service_method(compress="gzip")
    def compressible(self, size):
        """`size` bytes that compress well, sent gzip-compressed (and 100 bytes beside them, too few to compress)."""
        return {"bytes": bytes((i >> 6) % 251 for i in range(size)), "small": b"\x07" * 100}

    @service_method(compress={"codec": "zstd", "force": True})
    def zstd_chunks(self, count):
        for i in range(count):
            yield bytes([i]) * 10

    @service_method(context=True)
    def trace_of(self, context: CallContext):
        return {"traceparent": context.traceparent, "tracestate": context.tracestate}

    @service_method
    def add(self, a, b):
        return a + b

    @service_method(description="Counts from start to end")
    def numbers(self, start, end):
        for i in range(start, end):
            yield i

    @service_method
    async def async_numbers(self, start, end):
        for i in range(start, end):
            yield i

    @service_method
    def explode(self, item):
        raise OutOfStock(f"{item} is out of stock")

    @service_method
    def refuse(self):
        raise VoidRailError("nothing left", {"left": 0}, code="OUT_OF_STOCK")

    @service_method
    def bad_input(self):
        raise ValidationError("name is required", {"path": "args.0.name"})

    @service_method
    def not_json(self):
        return object()

    @service_method
    def pid(self):
        return os.getpid()

    @service_method
    async def sleep(self, seconds):
        await asyncio.sleep(seconds)
        return seconds

    @service_method(context=True)
    async def wait_for_cancel(self, tag, context: CallContext):
        PyService.seen[tag] = "started"
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            PyService.seen[tag] = f"cancelled:{type(context.cancel_reason).__name__}"
            raise
        return "never"

    @service_method(context=True)
    def wait_in_thread(self, tag, context: CallContext):
        PyService.seen[tag] = "started"
        context.cancelled.wait(3600)
        PyService.seen[tag] = f"cancelled:{type(context.cancel_reason).__name__}"
        return "stopped"

    @service_method
    def counted(self, tag, n):
        """Streams 0 … n-1, counting what it has produced (in a worker thread, paused while the client has no credit)."""
        for i in range(n):
            PyService.produced[tag] = i + 1
            yield i

    @service_method
    def produced_of(self, tag):
        return PyService.produced.get(tag, 0)

    @service_method
    def seen_of(self, tag):
        return PyService.seen.get(tag)

    @service_method(context=True)
    def steps(self, n, context: CallContext):
        for current in range(1, n + 1):
            context.progress({"current": current, "total": n})
            time.sleep(0.05)
        return {"done": n, "task": context.task_id, "attempt": context.attempt}

    @service_method
    def hold_gil(self, seconds):
        """Holds the GIL in native code for `seconds`; returns the longest gap another Python thread saw meanwhile."""
        beats = []
        stop = threading.Event()

        def tick():
            while not stop.is_set():
                beats.append(time.monotonic())
                time.sleep(0.01)

        ticker = threading.Thread(target=tick)
        ticker.start()
        time.sleep(0.1)
        hold_gil(seconds)
        time.sleep(0.1)
        stop.set()
        ticker.join()
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        return {"longest_gap": max(gaps), "pid": os.getpid()}

    @service_method
    def hold_once(self, marker):
        """The first call with a marker file that does not exist yet creates it and blocks; the next returns the pid."""
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return os.getpid()
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(3600)
        return os.getpid()


PyService.seen = {}  # type: ignore[attr-defined]
PyService.produced = {}  # type: ignore[attr-defined]
