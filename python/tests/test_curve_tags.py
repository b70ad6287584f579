"""CURVE with key lists, and tags/require, against a real TypeScript ServiceRouter (curveSecretKey + curveAllow).

test/integration/python-package.test.ts starts the router (dealer list: VOIDRAIL_TEST_CURVE_DEALER_SECRET's
public key; client list: VOIDRAIL_TEST_CURVE_CLIENT_SECRET's) with the TypeScript TsPeerService registered.
"""

import asyncio
import os
import socket

import pytest
import zmq

import voidrail
from voidrail import AsyncClient, Client, ServiceDealer, service_method


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through test/integration/python-package.test.ts", pytrace=False)
    return value


@pytest.fixture
def curve():
    return {
        "address": _env("VOIDRAIL_TEST_CURVE_ADDRESS"),
        "server": _env("VOIDRAIL_TEST_CURVE_SERVER_KEY"),
        "client": _env("VOIDRAIL_TEST_CURVE_CLIENT_SECRET"),
        "dealer": _env("VOIDRAIL_TEST_CURVE_DEALER_SECRET"),
    }


class Tagged(ServiceDealer):
    """Registers with the tags it is given; says which instance ran a call."""

    label = "?"

    @service_method
    def where(self):
        return self.label

    @service_method
    def count(self, n):
        for i in range(n):
            yield f"{self.label}:{i}"

    @service_method(context=True)
    def traced(self, context):
        return [context.traceparent, context.tracestate]

    @service_method(context=True)
    def job(self, n, context):
        return {"by": self.label, "n": n, "task": context.task_id}


def tagged(curve, label, tags, secret=None, **options):
    dealer = Tagged(curve["address"], curve_server_key=curve["server"], curve_secret_key=secret or curve["dealer"], tags=tags, start_timeout=10, **options)
    dealer.label = label
    return dealer


async def test_a_client_key_on_the_list_calls_typescript_services_encrypted(curve):
    async with AsyncClient(curve["address"], timeout=10, curve_server_key=curve["server"], curve_secret_key=curve["client"]) as client:
        assert await client.invoke("TsPeerService.add", 2, 3) == 5
        assert [n async for n in client.stream("TsPeerService.numbers", 0, 3)] == [0, 1, 2]
    # The synchronous Client takes the same keys (the public half is derived from the secret one).
    with Client(curve["address"], timeout=10, curve_server_key=curve["server"], curve_secret_key=curve["client"]) as client:
        assert client.invoke("TsPeerService.echo", "sync") == "sync"


async def test_the_keys_come_from_the_environment_too(curve, monkeypatch):
    monkeypatch.setenv("VOIDRAIL_CURVE_SERVER_KEY", curve["server"])
    monkeypatch.setenv("VOIDRAIL_CURVE_SECRET_KEY", curve["client"])
    async with AsyncClient(curve["address"], timeout=10) as client:
        assert await client.invoke("TsPeerService.add", 1, 1) == 2


async def test_a_key_on_neither_list_is_refused_with_an_auth_error_before_the_connect_timeout(curve):
    _, stranger = zmq.curve_keypair()
    with pytest.raises(voidrail.AuthError) as refused:
        await AsyncClient(curve["address"], timeout=10, connect_timeout=8, curve_server_key=curve["server"], curve_secret_key=stranger).connect()
    # An AuthError, not the TimeoutError that the connect timeout would raise: the refusal itself was seen.
    assert refused.value.data["reason"] == "CURVE_REFUSED"
    assert "curveAllow" in refused.value.message
    # A Python dealer with a stranger's key fails start() the same way, without waiting out start_timeout.
    dealer = tagged(curve, "stranger", None, secret=stranger)
    with pytest.raises(voidrail.AuthError) as refused_dealer:
        await dealer.start()
    assert refused_dealer.value.data["reason"] == "CURVE_REFUSED"
    assert "dealer's CURVE key" in refused_dealer.value.message


async def test_a_dealer_key_cannot_call(curve):
    with pytest.raises(voidrail.AuthError):
        await AsyncClient(curve["address"], timeout=10, connect_timeout=8, curve_server_key=curve["server"], curve_secret_key=curve["dealer"]).connect()


async def test_python_dealers_register_tags_over_curve_and_require_picks_among_them(curve):
    h200 = tagged(curve, "h200", {"gpu": "h200", "region": "eu"})
    a100 = tagged(curve, "a100", {"gpu": "a100"})
    await h200.start()
    await a100.start()
    try:
        async with AsyncClient(curve["address"], timeout=10, curve_server_key=curve["server"], curve_secret_key=curve["client"]) as client:
            mine = [entry for entry in await client.get_clusters() if entry.get("service") == "Tagged"]
            assert sorted(entry.get("tags", {}).get("gpu") for entry in mine) == ["a100", "h200"]
            assert {entry.get("host") for entry in mine} == {socket.gethostname()}
            assert {entry.get("publicKey") for entry in mine} == {zmq.curve_public(curve["dealer"].encode()).decode()}
            for _ in range(5):
                assert await client.invoke("Tagged.where", require={"gpu": "h200"}) == "h200"
                assert await client.invoke("Tagged.where", require={"gpu": "a100"}) == "a100"
            assert await client.invoke("Tagged.where", require={"gpu": "h200", "region": "eu"}) == "h200"
            assert [x async for x in client.stream("Tagged.count", 2, require={"gpu": "a100"})] == ["a100:0", "a100:1"]
            with pytest.raises(voidrail.NoSuchMethodError) as none:
                await client.invoke("Tagged.where", require={"gpu": "v100"})
            assert none.value.data.get("require") == {"gpu": "v100"}
            task = await client.submit("Tagged.job", 7, require={"gpu": "a100"})
            assert await client.wait_task(task["id"], timeout=10) == {"by": "a100", "n": 7, "task": task["id"]}
            with pytest.raises(voidrail.ValidationError) as bad:
                await client.invoke("Tagged.where", require={"gpu": "has space"})
            assert bad.value.data["path"] == "require.gpu"
    finally:
        await asyncio.gather(h200.stop(), a100.stop())


def test_bad_tags_are_refused_before_connecting(curve):
    with pytest.raises(voidrail.ValidationError) as bad:
        tagged(curve, "x", {"1gpu": "h200"})
    assert bad.value.data["path"] == "tags.1gpu"
    with pytest.raises(voidrail.ValidationError):
        tagged(curve, "x", {"gpu": ""})


async def test_a_wrong_server_key_fails_connect_at_its_timeout_saying_what_to_check(curve):
    # The router cannot open a HELLO sealed for another key and libzmq reports nothing: only the timeout tells.
    wrong_public, _ = zmq.curve_keypair()
    with pytest.raises(voidrail.TimeoutError) as failed:
        await AsyncClient(curve["address"], timeout=10, connect_timeout=1, curve_server_key=wrong_public, curve_secret_key=curve["client"]).connect()
    assert "curve_server_key" in failed.value.message


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_trace_context_reaches_a_python_method_through_the_router(curve):
    dealer = tagged(curve, "traced", None)
    await dealer.start()
    try:
        async with AsyncClient(curve["address"], timeout=10, curve_server_key=curve["server"], curve_secret_key=curve["client"]) as client:
            assert await client.invoke("Tagged.traced", traceparent=TRACEPARENT, tracestate="vendor=1") == [TRACEPARENT, "vendor=1"]
            assert await client.invoke("Tagged.traced") == [None, None]
            task = await client.submit("Tagged.traced", traceparent=TRACEPARENT)
            assert await client.wait_task(task["id"], timeout=10) == [TRACEPARENT, None]  # every attempt carries it
            assert (await client.get_task(task["id"])).get("traceparent") == TRACEPARENT
            for bad in ("00-" + "0" * 32 + "-b7ad6b7169203331-01", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "nope"):
                with pytest.raises(voidrail.ValidationError) as refused:
                    await client.invoke("Tagged.traced", traceparent=bad)
                assert refused.value.data["path"] == "traceparent"
    finally:
        await dealer.stop()
