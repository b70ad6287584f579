"""examples/fastapi/app.py under httpx.AsyncClient (in-process ASGI), calling the TypeScript EchoService of examples/services.ts."""

import json
import os
import sys

import httpx
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "fastapi"))


@pytest.fixture
async def http(address, monkeypatch):
    monkeypatch.setenv("VOIDRAIL_ROUTER_ADDRESS", address)
    from app import app  # the example itself

    await app.router.startup()
    try:
        async with httpx.AsyncClient(app=app, base_url="http://example") as client:
            yield client
    finally:
        await app.router.shutdown()


def parse_sse(text):
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_an_endpoint_awaits_a_typescript_method(http):
    response = await http.get("/add", params={"a": 2, "b": 3})
    assert response.status_code == 200 and response.json() == {"sum": 5}
    assert (await http.get("/echo", params={"message": "héllo"})).json() == {"echo": "héllo"}


async def test_a_stream_becomes_server_sent_events_and_json_lines(http):
    response = await http.get("/numbers", params={"start": 0, "end": 5})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert parse_sse(response.text) == [("chunk", 0), ("chunk", 1), ("chunk", 2), ("chunk", 3), ("chunk", 4), ("end", {"count": 5})]
    lines = await http.get("/numbers.jsonl", params={"start": 3, "end": 6})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in lines.text.splitlines()] == [3, 4, 5]


async def test_a_submitted_task_reports_its_progress(http):
    submitted = await http.post("/primes", json={"n": 20000})
    assert submitted.status_code == 202
    task_id = submitted.json()["task_id"]
    events = parse_sse((await http.get(f"/tasks/{task_id}/events")).text)
    states = [event["state"] for kind, event in events if kind == "task"]
    assert states[-1] == "succeeded"
    assert {"current": 10, "total": 10} in [event.get("progress") for _, event in events]
    status = (await http.get(f"/tasks/{task_id}")).json()
    assert status["state"] == "succeeded" and status["result"]["primes"] == 2262 and status["progress"] == {"current": 10, "total": 10}


async def test_voidrail_errors_become_http_statuses(http):
    missing = await http.get("/tasks/01890a5d-ac96-774b-bcce-b302099a8057")
    assert missing.status_code == 404 and missing.json()["code"] == "TASK_NOT_FOUND"
    malformed = await http.get("/tasks/not-a-task")
    assert malformed.status_code == 422 and malformed.json()["code"] == "VALIDATION_ERROR"
    refused = await http.post("/primes", json={"n": 1})
    assert refused.status_code == 422  # FastAPI's own check of the body
