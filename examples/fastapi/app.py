"""A FastAPI app that uses VoidRail services written in TypeScript: calls, streams and background tasks.

Run a router with the example services, then this app:

    npx voidrail serve --module examples/services.ts     # a router and EchoService on :5555
    PYTHONPATH=python python3 -m uvicorn --app-dir examples/fastapi app:app --port 8000

    curl 'localhost:8000/add?a=2&b=3'                      # {"sum": 5.0}
    curl -N 'localhost:8000/numbers?start=0&end=5'         # server-sent events, one per chunk
    curl -N 'localhost:8000/numbers.jsonl?start=0&end=5'   # JSON lines
    curl -X POST localhost:8000/primes -H 'content-type: application/json' -d '{"n": 200000}'
    curl localhost:8000/tasks/<task_id>                    # state and progress
    curl -N localhost:8000/tasks/<task_id>/events          # progress as server-sent events

One AsyncClient serves every request: calls from concurrent requests share its connection.
VOIDRAIL_ROUTER_ADDRESS (or VOIDRAIL_HOST/VOIDRAIL_PORT) says where the router is; VOIDRAIL_API_KEY
is the client key when the router requires one.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Dict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

import voidrail

app = FastAPI(title="VoidRail from FastAPI")

# VoidRail errors as HTTP answers: the code picks the status, the body says what happened.
HTTP_STATUS = {
    "NO_SUCH_METHOD": 503,
    "QUEUE_FULL": 503,
    "SHUTTING_DOWN": 503,
    "CONNECTION_LOST": 503,
    "TIMEOUT": 504,
    "VALIDATION_ERROR": 422,
    "TASK_NOT_FOUND": 404,
    "REMOTE_ERROR": 502,
}


@app.on_event("startup")
async def connect() -> None:
    app.state.voidrail = voidrail.AsyncClient(timeout=30)
    await app.state.voidrail.connect()


@app.on_event("shutdown")
async def disconnect() -> None:
    await app.state.voidrail.close()


def rail(request: Request) -> voidrail.AsyncClient:
    return request.app.state.voidrail


@app.exception_handler(voidrail.VoidRailError)
async def voidrail_error(_request: Request, error: voidrail.VoidRailError) -> JSONResponse:
    return JSONResponse({"code": error.code, "message": error.message}, status_code=HTTP_STATUS.get(error.code, 500))


@app.get("/add")
async def add(request: Request, a: float, b: float) -> Dict[str, Any]:
    return {"sum": await rail(request).invoke("EchoService.add", a, b)}


@app.get("/echo")
async def echo(request: Request, message: str) -> Dict[str, Any]:
    return {"echo": await rail(request).invoke("EchoService.echo", message)}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@app.get("/numbers")
async def numbers(request: Request, start: int = 0, end: int = 10) -> StreamingResponse:
    """The stream's chunks as server-sent events, each sent as it arrives; `end` or `error` closes it."""
    chunks = rail(request).stream("EchoService.streamNumbers", start, end)

    async def events() -> AsyncIterator[str]:
        count = 0
        try:
            async for chunk in chunks:
                count += 1
                yield sse("chunk", chunk)
        except voidrail.VoidRailError as error:
            yield sse("error", {"code": error.code, "message": error.message})
            return
        yield sse("end", {"count": count})

    return StreamingResponse(events(), media_type="text/event-stream")


@app.get("/numbers.jsonl")
async def numbers_jsonl(request: Request, start: int = 0, end: int = 10) -> StreamingResponse:
    """The same stream as JSON lines (application/x-ndjson)."""
    chunks = rail(request).stream("EchoService.streamNumbers", start, end)

    async def lines() -> AsyncIterator[str]:
        async for chunk in chunks:
            yield json.dumps(chunk) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


class PrimesJob(BaseModel):
    n: int = Field(..., ge=2, le=50_000_000)


@app.post("/primes", status_code=202)
async def submit_primes(request: Request, job: PrimesJob) -> Dict[str, Any]:
    """Submits a background task; answers at once with its id (poll /tasks/{id} or watch /tasks/{id}/events)."""
    task = await rail(request).submit("EchoService.countPrimesInSteps", job.n, retries=1)
    return {"task_id": task["id"], "state": task["state"]}


@app.get("/tasks/{task_id}")
async def task_status(request: Request, task_id: str) -> Dict[str, Any]:
    task = await rail(request).get_task(task_id)
    return {key: task.get(key) for key in ("id", "state", "progress", "result", "error", "attempts")}


@app.get("/tasks/{task_id}/events")
async def task_events(request: Request, task_id: str) -> StreamingResponse:
    """The task's state and progress as server-sent events until it is final."""
    watch = rail(request).watch_task(task_id)

    async def events() -> AsyncIterator[str]:
        try:
            async for event in watch:
                yield sse("task", event)
        except voidrail.VoidRailError as error:
            yield sse("error", {"code": error.code, "message": error.message})

    return StreamingResponse(events(), media_type="text/event-stream")
