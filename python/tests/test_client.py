"""AsyncClient and Client against a real TypeScript router and the TypeScript service TsPeerService (test/fixtures/python-peers.ts)."""

import asyncio
import time
import uuid

import pytest
import zmq

import voidrail
from voidrail import AsyncClient, Client

S = "TsPeerService"


async def wait_until(check, what, timeout=10.0):
    """Polls an async `check` until it returns a truthy value; fails with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.02)


async def test_every_call_kind(address):
    async with AsyncClient(address, timeout=10) as client:
        assert client.revision == voidrail.PROTOCOL_VERSION
        assert await client.invoke(f"{S}.echo", "hi") == "hi"
        assert await client.invoke(f"{S}.echo", {"nested": [1, None, "x"]}) == {"nested": [1, None, "x"]}
        assert await client.invoke(f"{S}.add", 2, 3) == 5
        assert await client.invoke(f"{S}.greet", {"name": "Ada"}) == "Hello, Ada!"
        assert [n async for n in client.stream(f"{S}.numbers", 0, 200)] == list(range(200))  # beyond the 64-chunk window
        assert [n async for n in client.stream(f"{S}.countDown", 3)] == [3, 2, 1]
        assert [n async for n in client.stream(f"{S}.numbers", 5, 5)] == []
        services = await client.discover_services()
        assert services[f"{S}.echo"]["description"] == "Returns its argument"
        assert services[f"{S}.numbers"]["stream"] is True
        info = await client.get_router_info()
        assert info["activeDealers"] >= 1 and info["mode"] in ("fifo", "load_balance")
        queues = await client.get_queue_status()
        assert queues[f"{S}.echo"]["queueLength"] == 0
        assert any(dealer["service"] == S for dealer in await client.get_clusters())


async def test_bytes_in_and_out(address):
    async with AsyncClient(address, timeout=10) as client:
        blob = bytes(range(256)) * 4096  # 1 MiB
        assert await client.invoke(f"{S}.echo", blob) == blob
        back = await client.invoke(f"{S}.echo", {"a": bytearray(b"xy"), "b": [memoryview(b"zz")], "n": 1})
        assert back == {"a": b"xy", "b": [b"zz"], "n": 1}
        measured = await client.invoke(f"{S}.measure", b"\x01\x02", bytearray(b"\x03"), memoryview(b"\x04\x05\x06"), "text")
        assert measured == [
            {"type": "Uint8Array", "length": 2, "sum": 3},
            {"type": "Uint8Array", "length": 1, "sum": 3},
            {"type": "Uint8Array", "length": 3, "sum": 15},
            {"type": "string"},
        ]
        result = await client.invoke(f"{S}.binary", 1000)
        assert result["bytes"] == bytes(i % 251 for i in range(1000))
        assert memoryview(result["floats"]).cast("f").tolist() == [1.5, -2.0]
        assert result["buffer"] == b"buf" and result["size"] == 1000
        assert [chunk async for chunk in client.stream(f"{S}.numbers", 0, 2)] == [0, 1]


async def test_a_thousand_concurrent_invokes_on_one_connection(address):
    async with AsyncClient(address, timeout=60) as client:
        results = await asyncio.gather(*(client.invoke(f"{S}.add", i, 1000) for i in range(1000)))
        assert results == [i + 1000 for i in range(1000)]
        # Streams and unary calls interleave on the same connection, each matched by its id.
        mixed = await asyncio.gather(
            *(client.invoke(f"{S}.echo", i) for i in range(100)),
            *(_collect(client.stream(f"{S}.numbers", 0, i)) for i in range(20)),
        )
        assert mixed[:100] == list(range(100))
        assert mixed[100:] == [list(range(i)) for i in range(20)]


async def _collect(iterator):
    return [item async for item in iterator]


async def test_timeout_raises_TimeoutError_and_the_call_is_cancelled(address):
    async with AsyncClient(address, timeout=10) as client:
        with pytest.raises(voidrail.TimeoutError) as raised:
            await client.invoke(f"{S}.slow", 5000, timeout=0.3)
        assert raised.value.code == "TIMEOUT"
        assert isinstance(raised.value, TimeoutError)  # Python's own TimeoutError too
        # A method that never ends on its own: the timeout is what ends the call.
        tag = str(uuid.uuid4())
        with pytest.raises(voidrail.TimeoutError):
            await client.invoke(f"{S}.waitForCancel", tag, timeout=0.3)
        # The router passed the timeout on as a CANCEL: the method saw its signal abort.
        await wait_until(lambda: _seen(client, tag, "aborted"), "the TypeScript method to see the cancel")
        # A stream's timeout is the longest wait for its next chunk.
        with pytest.raises(voidrail.TimeoutError):
            await _collect(client.stream(f"{S}.forever", str(uuid.uuid4()), timeout=0.0001))


async def _seen(client, tag, prefix):
    seen = await client.invoke(f"{S}.seenOf", tag)
    return seen if seen and seen.startswith(prefix) else None


async def test_cancelling_the_awaiting_task_sends_CANCEL(address):
    async with AsyncClient(address, timeout=10) as client:
        tag = str(uuid.uuid4())
        call = asyncio.ensure_future(client.invoke(f"{S}.waitForCancel", tag))
        await wait_until(lambda: _seen(client, tag, "started"), "the call to start")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await wait_until(lambda: _seen(client, tag, "aborted"), "the TypeScript method to be aborted") == "aborted:CancelledError"
        # asyncio.wait_for cancels the same way.
        tag2 = str(uuid.uuid4())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.invoke(f"{S}.waitForCancel", tag2), 0.3)
        await wait_until(lambda: _seen(client, tag2, "aborted"), "the second method to be aborted")
        # The connection goes on serving.
        assert await client.invoke(f"{S}.add", 1, 1) == 2


async def test_a_slow_reader_holds_the_producer_back_with_credit(address):
    async with AsyncClient(address, timeout=10, stream_window=4) as client:
        tag = str(uuid.uuid4())
        stream = client.stream(f"{S}.counted", tag, 1000)
        assert [await stream.__anext__(), await stream.__anext__()] == [0, 1]
        # Two read: the window of 4 and the 2 handed back are all the service may have made, however long we wait.
        await wait_until(lambda: _at_least(client, tag, 4), "the producer to fill the window")
        assert await client.invoke(f"{S}.producedOf", tag) <= 6
        rest = [item async for item in stream]
        assert rest == list(range(2, 1000))
        assert await client.invoke(f"{S}.producedOf", tag) == 1000


async def _at_least(client, tag, count):
    return await client.invoke(f"{S}.producedOf", tag) >= count


async def test_leaving_a_stream_early_cancels_it(address):
    async with AsyncClient(address, timeout=10) as client:
        tag = str(uuid.uuid4())
        stream = client.stream(f"{S}.forever", tag)
        got = []
        async for item in stream:
            got.append(item)
            if len(got) == 3:
                break
        await stream.aclose()  # what the event loop would do soon after the break anyway
        assert got == [0, 1, 2]
        assert await wait_until(lambda: _seen(client, tag, "aborted"), "the stream's producer to stop") == "aborted:CancelledError"


async def test_errors_are_rebuilt_by_code(address):
    async with AsyncClient(address, timeout=10) as client:
        with pytest.raises(voidrail.RemoteError) as raised:
            await client.invoke(f"{S}.explode", "widget")
        assert raised.value.message == "widget is out of stock"
        assert raised.value.data["name"] == "InventoryError"
        with pytest.raises(voidrail.NoSuchMethodError) as missing:
            await client.invoke("Nope.nothing")
        assert missing.value.data == {"method": "Nope.nothing"}
        with pytest.raises(voidrail.ValidationError) as invalid:
            await client.invoke(f"{S}.add", "two", 3)
        assert invalid.value.data["path"].startswith("args.0")
        with pytest.raises(voidrail.ValidationError) as bad_name:
            await client.invoke("not-a-method")
        assert bad_name.value.data == {"path": "method"}
        with pytest.raises(voidrail.ValidationError):
            await client.invoke(f"{S}.echo", object())  # not JSON: refused before sending
        with pytest.raises(voidrail.ValidationError):
            await client.invoke(f"{S}.echo", float("nan"))
        with pytest.raises(voidrail.ValidationError):
            await _collect(client.stream(f"{S}.echo", 1))  # not a streaming method
        for cls in (voidrail.RemoteError, voidrail.NoSuchMethodError, voidrail.TimeoutError, voidrail.CancelledError, voidrail.AuthError):
            assert issubclass(cls, voidrail.VoidRailError)
        assert voidrail.VoidRailError("x", code="OUT_OF_STOCK").code == "OUT_OF_STOCK"
        assert await client.invoke(f"{S}.echo", "still fine") == "still fine"


async def test_auth(auth_address, client_key):
    async with AsyncClient(auth_address, api_key=client_key, timeout=10) as client:
        assert await client.invoke(f"{S}.echo", "authorised") == "authorised"
        assert (await client.get_router_info())["requireClientAuth"] is True
    with pytest.raises(voidrail.AuthError) as wrong:
        async with AsyncClient(auth_address, api_key="client_wrong-key", timeout=10):
            pass
    assert "refused this client's API key" in wrong.value.message
    with pytest.raises(voidrail.AuthError) as none:
        async with AsyncClient(auth_address, timeout=10):
            pass
    assert "requires a client API key and none was given" in none.value.message


async def test_no_router_gives_up_at_the_connect_timeout(tmp_path):
    with pytest.raises(voidrail.TimeoutError) as raised:
        async with AsyncClient(f"ipc://{tmp_path}/nobody", timeout=0.3):
            pass
    assert "no WELCOME" in raised.value.message


async def test_background_tasks(address):
    async with AsyncClient(address, timeout=10) as client:
        task = await client.submit(f"{S}.steps", 3, priority=7, retries=1)
        assert task["state"] in ("queued", "running", "succeeded") and task["priority"] == 7
        events = [event async for event in client.watch_task(task["id"])]
        assert events[-1]["state"] == "succeeded"
        assert {"current": 3, "total": 3} in [event.get("progress") for event in events]
        assert await client.wait_task(task["id"], timeout=10) == {"done": 3, "taskId": task["id"]}
        got = await client.get_task(task["id"])
        assert got["state"] == "succeeded" and got["attempts"] == 1 and got["progress"] == {"current": 3, "total": 3}
        failed = await client.submit(f"{S}.explode", "gizmo")
        with pytest.raises(voidrail.RemoteError) as raised:
            await client.wait_task(failed["id"], timeout=10)
        assert raised.value.task["state"] == "failed"
        later = await client.submit(f"{S}.add", 1, 2, countdown=3600)
        assert later["state"] == "scheduled"
        revoked = await client.revoke_task(later["id"])
        assert revoked["state"] == "revoked"
        with pytest.raises(voidrail.CancelledError):
            await client.wait_task(later["id"])
        with pytest.raises(voidrail.TimeoutError):
            slow = await client.submit(f"{S}.slow", 3000)
            await client.wait_task(slow["id"], timeout=0.2)
        with pytest.raises(voidrail.TaskNotFoundError):
            await client.get_task("01890a5d-ac96-774b-bcce-b302099a8057")
        with pytest.raises(voidrail.ValidationError) as bad_option:
            await client.submit(f"{S}.add", 1, 2, priority=12)
        assert bad_option.value.data == {"path": "options.priority"}
        with pytest.raises(voidrail.ValidationError):
            await client.get_task("not-a-task-id")
        page = await client.list_tasks(state="revoked")
        assert later["id"] in [entry["id"] for entry in page["tasks"]]


def test_the_synchronous_client(address):
    with Client(address, timeout=10) as client:
        assert client.invoke(f"{S}.add", 20, 22) == 42
        assert list(client.stream(f"{S}.numbers", 0, 100)) == list(range(100))
        assert client.invoke(f"{S}.echo", b"\x00\xff") == b"\x00\xff"
        with pytest.raises(voidrail.RemoteError):
            client.invoke(f"{S}.explode", "thing")
        task = client.submit(f"{S}.steps", 1)
        assert client.wait_task(task["id"], timeout=10)["done"] == 1
        assert [event["state"] for event in client.watch_task(task["id"])] == ["succeeded"]
        assert f"{S}.echo" in client.discover_services()
        for n in client.stream(f"{S}.numbers", 0, 1000):
            if n == 5:
                break  # leaves the stream early: CANCEL goes out, the client goes on
        assert client.invoke(f"{S}.echo", "after") == "after"
        # Several threads share the one Client; each call blocks only its own thread.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            sums = list(pool.map(lambda i: client.invoke(f"{S}.add", i, i), range(400)))
        assert sums == [2 * i for i in range(400)]


async def test_curve_keys_go_to_pyzmq(tmp_path):
    """CURVE: the client encrypts with the router's public key. Checked against a pyzmq CURVE ROUTER that plays router."""
    server_public, server_secret = zmq.curve_keypair()
    context = zmq.asyncio.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.curve_server = True
    router.curve_secretkey = server_secret
    endpoint = f"ipc://{tmp_path}/curve"
    router.bind(endpoint)
    seen = []

    async def serve():
        while True:
            frames = await router.recv_multipart()
            peer, kind, header = frames[0], frames[2], frames[3]
            import json

            seen.append(kind)
            if kind == b"HELLO":
                welcome = {"role": "client", "version": 3, "heartbeatIntervalMs": 0, "heartbeatTimeoutMs": 0}
                await router.send_multipart([peer, b"VRP1", b"WELCOME", json.dumps(welcome).encode()])
            elif kind == b"REQUEST":
                request_id = json.loads(header)["id"]
                await router.send_multipart([peer, b"VRP1", b"RESULT", json.dumps({"id": request_id}).encode(), frames[4]])

    serving = asyncio.ensure_future(serve())
    try:
        async with AsyncClient(endpoint, timeout=5, curve_server_key=server_public) as client:
            assert await client.invoke("Fake.echo", "secret") == ["secret"]
        client_public, client_secret = zmq.curve_keypair()
        async with AsyncClient(endpoint, timeout=5, curve_server_key=server_public.decode(), curve_public_key=client_public, curve_secret_key=client_secret) as client:
            assert await client.invoke("Fake.echo", 1) == [1]
        assert seen == [b"HELLO", b"REQUEST", b"HELLO", b"REQUEST"]
        wrong_public, _ = zmq.curve_keypair()
        with pytest.raises(voidrail.VoidRailError):  # the handshake fails: no WELCOME comes
            async with AsyncClient(endpoint, timeout=1, curve_server_key=wrong_public):
                pass
        with pytest.raises(voidrail.ValidationError):
            AsyncClient(endpoint, curve_server_key="too-short")
    finally:
        serving.cancel()
        router.close(0)


class FakeRouter:
    """A pyzmq ROUTER playing router: WELCOMEs each HELLO, answers REQUESTs with their arguments (method "Fake.echo"), holds "Fake.hold"."""

    def __init__(self, endpoint, answer_holds=False):
        import json

        self.answer_holds = answer_holds
        self.requests = []

        self.json = json
        self.endpoint = endpoint
        self.hellos = 0
        self.socket = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.task = asyncio.ensure_future(self.serve())

    async def serve(self):
        while True:
            frames = await self.socket.recv_multipart()
            peer, kind, header = frames[0], frames[2], self.json.loads(frames[3])
            if kind == b"HELLO":
                self.hellos += 1
                welcome = {"role": "client", "version": 3, "heartbeatIntervalMs": 0, "heartbeatTimeoutMs": 0}
                await self.socket.send_multipart([peer, b"VRP1", b"WELCOME", self.json.dumps(welcome).encode()])
            elif kind == b"REQUEST":
                self.requests.append(header)
            if kind == b"REQUEST" and (header["method"] == "Fake.echo" or self.answer_holds):
                await self.socket.send_multipart([peer, b"VRP1", b"RESULT", self.json.dumps({"id": header["id"]}).encode(), frames[4]])

    async def close(self):
        self.task.cancel()
        self.socket.close(0)


async def test_a_dropped_connection_fails_the_calls_in_flight_and_the_client_says_HELLO_again(tmp_path):
    endpoint = f"ipc://{tmp_path}/router"
    router = FakeRouter(endpoint)
    async with AsyncClient(endpoint, timeout=10) as client:
        assert await client.invoke("Fake.echo", 1) == [1]
        held = asyncio.ensure_future(client.invoke("Fake.hold"))
        await wait_until(lambda: _true(len(router.requests) == 2), "the held call to reach the router")
        await router.close()  # the router goes away with the call unanswered
        with pytest.raises(voidrail.ConnectionLostError):
            await held
        router = FakeRouter(endpoint)  # and comes back on the same address
        try:
            # The next call waits for the new WELCOME, which the reconnected socket asks for by itself.
            assert await client.invoke("Fake.echo", 2) == [2]
            assert router.hellos == 1
        finally:
            await router.close()


async def test_a_python_dealer_registers_and_serves_over_curve(tmp_path):
    """The ServiceDealer's CURVE keys go to pyzmq too: a pyzmq CURVE ROUTER plays router for it."""
    import json

    server_public, server_secret = zmq.curve_keypair()
    router = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.curve_server = True
    router.curve_secretkey = server_secret
    endpoint = f"ipc://{tmp_path}/curve-dealer"
    router.bind(endpoint)
    seen = []
    answered = asyncio.get_running_loop().create_future()

    async def serve():
        while True:
            frames = await router.recv_multipart()
            peer, kind, header = frames[0], frames[2].decode(), json.loads(frames[3])
            seen.append(kind)
            if kind == "HELLO":
                assert header["role"] == "dealer" and header["methods"] == {"Curvy.double": {"stream": False}}
                welcome = {"role": "dealer", "version": 3, "dealerId": "Curvy-1", "heartbeatIntervalMs": 0, "heartbeatTimeoutMs": 0}
                await router.send_multipart([peer, b"VRP1", b"WELCOME", json.dumps(welcome).encode()])
                await router.send_multipart([peer, b"VRP1", b"REQUEST", json.dumps({"id": 5, "method": "Curvy.double"}).encode(), b"[21]"])
            elif kind == "RESULT":
                answered.set_result((header, json.loads(frames[4])))

    class Curvy(voidrail.ServiceDealer):
        @voidrail.service_method
        def double(self, n):
            return 2 * n

    serving = asyncio.ensure_future(serve())
    dealer = Curvy(endpoint, curve_server_key=server_public, start_timeout=5)
    try:
        await dealer.start()
        assert dealer.dealer_id == "Curvy-1"
        assert await asyncio.wait_for(answered, 5) == ({"id": 5}, 42)
        await dealer.stop()
        await wait_until(lambda: _true("BYE" in seen), "the dealer's BYE")
        assert seen == ["HELLO", "RESULT", "DRAIN", "BYE"]
    finally:
        serving.cancel()
        router.close(0)


async def test_an_idempotent_call_is_sent_again_after_a_reconnection(tmp_path):
    endpoint = f"ipc://{tmp_path}/router"
    router = FakeRouter(endpoint)
    async with AsyncClient(endpoint, timeout=10) as client:
        held = asyncio.ensure_future(client.invoke("Fake.hold", "again", idempotent=True))
        plain = asyncio.ensure_future(client.invoke("Fake.hold", "once"))
        await wait_until(lambda: _true(len(router.requests) == 2), "both calls to reach the router")
        await router.close()
        with pytest.raises(voidrail.ConnectionLostError):
            await plain  # not idempotent: it fails
        router = FakeRouter(endpoint, answer_holds=True)
        try:
            assert await held == ["again"]  # sent again on the new connection, and answered there
            assert router.requests == [{"id": router.requests[0]["id"], "method": "Fake.hold", "timeoutMs": 10000, "idempotent": True, "waitForDealer": True}]
        finally:
            await router.close()


async def _true(value):
    return value


async def test_a_python_client_calls_a_python_service_in_the_same_process(address):
    """Both Python peers on one event loop and one router: the dealer's thread pool and the client's calls do not get in each other's way."""

    class Local(voidrail.ServiceDealer):
        @voidrail.service_method
        def checksum(self, blob):
            return sum(blob)

        @voidrail.service_method
        async def pieces(self, blob, size):
            for start in range(0, len(blob), size):
                yield blob[start : start + size]

        @voidrail.service_method
        def fail(self):
            raise ValueError("no")

    name = f"Local_{uuid.uuid4().hex[:8]}"
    dealer = Local(address, service_name=name, max_concurrent=8)
    await dealer.start()
    try:
        async with AsyncClient(address, timeout=10) as client:
            blob = bytes(range(256)) * 16
            assert await client.invoke(f"{name}.checksum", blob) == sum(blob)
            assert b"".join([piece async for piece in client.stream(f"{name}.pieces", blob, 1000)]) == blob
            results = await asyncio.gather(*(client.invoke(f"{name}.checksum", bytes([i])) for i in range(200)))
            assert results == list(range(200))
            with pytest.raises(voidrail.RemoteError) as raised:
                await client.invoke(f"{name}.fail")
            assert raised.value.data["name"] == "ValueError"
    finally:
        await dealer.stop()
    assert not dealer.registered


async def test_compressed_results_from_a_typescript_service_are_inflated(address, monkeypatch):
    from voidrail import protocol

    inflated = []
    real = protocol.inflate

    def counting(frame, codec, size, what="payload"):
        inflated.append(codec)
        return real(frame, codec, size, what)

    monkeypatch.setattr(protocol, "inflate", counting)
    expected = bytes((i >> 6) % 251 for i in range(300_000))
    async with AsyncClient(address, timeout=10) as client:
        assert await client.invoke(f"{S}.gzipped", 300_000) == {"bytes": expected}
        assert await client.invoke(f"{S}.zstded", 300_000) == {"bytes": expected}
    assert inflated == ["gzip", "zstd"]  # they came compressed, as the methods' compress option says


async def test_compressed_arguments_reach_a_typescript_service_inflated(address, monkeypatch):
    from voidrail import compress

    packed = []
    real = compress._compress

    def counting(view, compression):
        packed.append((compression.codec, view.nbytes))
        return real(view, compression)

    monkeypatch.setattr(compress, "_compress", counting)
    data = bytes((i >> 6) % 251 for i in range(300_000))
    small = b"\x07" * 100
    expected = [{"type": "Uint8Array", "length": len(data), "sum": sum(data)}, {"type": "Uint8Array", "length": 100, "sum": 700}]
    async with AsyncClient(address, timeout=10) as client:
        assert await client.invoke(f"{S}.measure", data, small, compress="gzip") == expected
        assert await client.invoke(f"{S}.measure", data, small, compress={"codec": "zstd", "level": 1}) == expected
        assert [x async for x in client.stream(f"{S}.numbers", 0, 2, compress="gzip")] == [0, 1]  # no bytes: nothing to compress
        with pytest.raises(voidrail.ValidationError) as bad:
            await client.invoke(f"{S}.measure", data, compress="lz4")
        assert bad.value.data["path"] == "compress.codec"
    # The 100 bytes went as they were (under 1 KiB); the large value was compressed each time.
    assert packed == [("gzip", len(data)), ("zstd", len(data))]
