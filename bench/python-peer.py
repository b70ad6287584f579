"""The Python processes of bench/python.ts (run with PYTHONPATH=python).

    python3 bench/python-peer.py echo                      a pyzmq ROUTER that echoes (the floor); prints "ready <address>"
    python3 bench/python-peer.py dealer <address>          a Python ServiceDealer with PyBench.echo (def) and PyBench.aecho (async def)
    python3 bench/python-peer.py measure <address> <what> <calls> <sequential> <runs>
        what: "raw-blocking" (blocking pyzmq), "raw" (zmq.asyncio) or "raw-loop" (voidrail's LoopSocket), each a
        DEALER against the echo, or a method for AsyncClient.invoke;
        prints one JSON line {"seq": {...}, "pipe": {...}}: calls/s, p50 and p99 in µs, median of the runs
"""

import asyncio
import json
import sys
import time

import zmq
import zmq.asyncio

IN_FLIGHT = 64


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def figures(latencies, count, elapsed):
    latencies.sort()
    return {"callsPerSecond": count / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


async def sequential(call, count):
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - t) * 1e6)
    return figures(latencies, count, time.perf_counter() - start)


async def pipelined(call, count):
    latencies = []
    issued = 0

    async def caller():
        nonlocal issued
        while issued < count:
            issued += 1
            t = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t) * 1e6)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
    return figures(latencies, count, time.perf_counter() - start)


async def median_of(run, runs):
    await run()  # warm-up
    results = [await run() for _ in range(runs)]
    return {key: sorted(result[key] for result in results)[len(results) // 2] for key in ("callsPerSecond", "p50", "p99")}


async def raw_caller(address):
    """Calls with per-request ids over a bare zmq.asyncio DEALER, as AsyncClient does, without VoidRail."""
    socket = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    socket.connect(address)
    waiting = {}
    ids = iter(range(1, 1 << 62))
    payload = json.dumps(["hello"]).encode()

    async def read():
        while True:
            frames = await socket.recv_multipart()
            future = waiting.pop(int.from_bytes(frames[0], "big"), None)
            if future is not None:
                future.set_result(frames[1])

    reader = asyncio.ensure_future(read())

    async def call():
        request_id = next(ids)
        future = asyncio.get_running_loop().create_future()
        waiting[request_id] = future
        await socket.send_multipart([request_id.to_bytes(8, "big"), payload])
        return await future

    return call, lambda: (reader.cancel(), socket.close(0))


async def loop_caller(address):
    """The same over a plain pyzmq DEALER driven from the loop by voidrail's LoopSocket, as AsyncClient drives its socket."""
    from voidrail.aio_socket import LoopSocket

    waiting = {}
    ids = iter(range(1, 1 << 62))
    payload = json.dumps(["hello"]).encode()

    def on_message(frames):
        future = waiting.pop(int.from_bytes(frames[0], "big"), None)
        if future is not None:
            future.set_result(frames[1])

    socket = zmq.Context.instance().socket(zmq.DEALER)
    io = LoopSocket(socket, asyncio.get_running_loop(), on_message)
    socket.connect(address)

    async def call():
        request_id = next(ids)
        future = asyncio.get_running_loop().create_future()
        waiting[request_id] = future
        io.send([request_id.to_bytes(8, "big"), payload])
        return await future

    return call, lambda: io.close()


def blocking(address, calls, sequential_calls, runs):
    """Plain blocking pyzmq, no event loop: sequential send/recv, and a window of 64 requests kept outstanding."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.connect(address)
    payload = json.dumps(["hello"]).encode()

    def sequential_run():
        latencies = []
        start = time.perf_counter()
        for i in range(sequential_calls):
            t = time.perf_counter()
            socket.send_multipart([i.to_bytes(8, "big"), payload])
            socket.recv_multipart()
            latencies.append((time.perf_counter() - t) * 1e6)
        return figures(latencies, sequential_calls, time.perf_counter() - start)

    def pipelined_run():
        latencies = []
        sent_at = {}
        start = time.perf_counter()
        issued = 0
        while issued < min(IN_FLIGHT, calls):
            sent_at[issued] = time.perf_counter()
            socket.send_multipart([issued.to_bytes(8, "big"), payload])
            issued += 1
        for _ in range(calls):
            request_id = int.from_bytes(socket.recv_multipart()[0], "big")
            latencies.append((time.perf_counter() - sent_at.pop(request_id)) * 1e6)
            if issued < calls:
                sent_at[issued] = time.perf_counter()
                socket.send_multipart([issued.to_bytes(8, "big"), payload])
                issued += 1
        return figures(latencies, calls, time.perf_counter() - start)

    def median(run):
        run()
        results = [run() for _ in range(runs)]
        return {key: sorted(result[key] for result in results)[len(results) // 2] for key in ("callsPerSecond", "p50", "p99")}

    result = {"seq": median(sequential_run), "pipe": median(pipelined_run)}
    socket.close(0)
    print(json.dumps(result), flush=True)


async def measure(address, what, calls, sequential_calls, runs):
    import voidrail

    if what in ("raw", "raw-loop"):
        call, close = await (raw_caller(address) if what == "raw" else loop_caller(address))
        client = None
    else:
        client = voidrail.AsyncClient(address, timeout=60)
        await client.connect()

        def call():
            return client.invoke(what, "hello")

        close = None
    result = {
        "seq": await median_of(lambda: sequential(call, sequential_calls), runs),
        "pipe": await median_of(lambda: pipelined(call, calls), runs),
    }
    if client is not None:
        await client.close()
    if close is not None:
        close()
    print(json.dumps(result), flush=True)


def echo():
    socket = zmq.Context.instance().socket(zmq.ROUTER)
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    print(f"ready tcp://127.0.0.1:{port}", flush=True)
    while True:
        socket.send_multipart(socket.recv_multipart(copy=False), copy=False)


def dealer(address):
    from voidrail import ServiceDealer, service_method

    class PyBench(ServiceDealer):
        @service_method
        def echo(self, value):
            return value

        @service_method
        async def aecho(self, value):
            return value

    async def main():
        service = PyBench(address, max_concurrent=100)
        await service.start()
        print(f"ready {address}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "echo":
        echo()
    elif role == "dealer":
        dealer(sys.argv[2])
    elif role == "measure":
        address, what, calls, sequential_calls, runs = sys.argv[2:7]
        if what == "raw-blocking":
            blocking(address, int(calls), int(sequential_calls), int(runs))
        else:
            asyncio.run(measure(address, what, int(calls), int(sequential_calls), int(runs)))
    else:
        sys.exit(f"unknown role {role}")
