"""@service_method and CallContext: how a ServiceDealer's methods are marked and what a running call can see."""

from __future__ import annotations

import inspect
import re
import threading
from typing import Any, Callable, Dict, List, NamedTuple, Optional, TypeVar, Union, overload

F = TypeVar("F", bound=Callable[..., Any])

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MARK = "__voidrail_method__"


class MethodSpec(NamedTuple):
    name: str
    kind: str  # "sync", "async", "generator" or "async_generator"
    stream: bool
    context: bool
    description: Optional[str]
    params: Optional[Dict[str, Any]]
    metadata: Optional[Dict[str, Any]]
    task: Optional[Dict[str, Any]]
    compress: Any = None  # a checked compress.Compression for its results and chunks, or None


@overload
def service_method(fn: F) -> F: ...


@overload
def service_method(
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    params: Optional[Dict[str, Any]] = None,
    metadata: Optional[Dict[str, Any]] = None,
    context: bool = False,
    task: Optional[Dict[str, Any]] = None,
    compress: Any = None,
) -> Callable[[F], F]: ...


def service_method(
    fn: Optional[F] = None,
    *,
    name: Optional[str] = None,
    description: Optional[str] = None,
    params: Optional[Dict[str, Any]] = None,
    metadata: Optional[Dict[str, Any]] = None,
    context: bool = False,
    task: Optional[Dict[str, Any]] = None,
    compress: Any = None,
) -> Union[F, Callable[[F], F]]:
    """Marks a method of a ServiceDealer subclass as callable as "Service.name".

    Plain and `async def` methods answer with one RESULT; generators and async generators stream
    (each item a CHUNK). Plain methods and generators run in the dealer's worker threads (up to
    `max_concurrent` at once), async ones on its event loop. With `context=True` the method gets a
    keyword argument `context` (a CallContext: cancellation, deadline, task id, progress).
    `description`, `params` (a JSON Schema of the argument array) and `metadata` are shown by
    discovery; `task` holds the method's default task options in wire form (HELLO methods[m].task).
    `compress` ("gzip", "zstd" or {"codec", "force", "level"}) compresses the binary values of its
    results and chunks (PROTOCOL.md §5.2), as `@serviceMethod({ compress })` does in TypeScript.

        class Images(ServiceDealer):
            @service_method(description="Resizes a PNG")
            def resize(self, png: bytes, width: int) -> bytes: ...

            @service_method
            async def frames(self, count: int):
                for i in range(count):
                    yield i
    """

    def mark(method: F) -> F:
        method_name = name or method.__name__
        if not NAME.match(method_name):
            raise ValueError(f"service method name {method_name!r} is not an identifier")
        if inspect.isasyncgenfunction(method):
            kind = "async_generator"
        elif inspect.isgeneratorfunction(method):
            kind = "generator"
        elif inspect.iscoroutinefunction(method):
            kind = "async"
        else:
            kind = "sync"
        from .compress import check_compress

        spec = MethodSpec(
            method_name, kind, kind.endswith("generator"), context, description, params, metadata, task, check_compress(compress)
        )
        setattr(method, _MARK, spec)
        return method

    return mark(fn) if fn is not None else mark


def collect_methods(instance: Any) -> Dict[str, "tuple[MethodSpec, Callable[..., Any], inspect.Signature]"]:
    """The marked methods of `instance`'s class (inherited ones too), by name, bound, with their signatures."""
    found: Dict[str, "tuple[MethodSpec, Callable[..., Any], inspect.Signature]"] = {}
    for attribute in dir(type(instance)):
        value = getattr(type(instance), attribute, None)
        spec: Optional[MethodSpec] = getattr(value, _MARK, None)
        if spec is None:
            continue
        bound = getattr(instance, attribute)
        signature = inspect.signature(bound)
        if spec.context:
            signature = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "context"])
        found[spec.name] = (spec, bound, signature)
    return found


class CallContext:
    """What a running call can see: pass `context=True` to @service_method to get it as the `context` keyword.

    - `cancelled`: a threading.Event set when the call is cancelled, passes its deadline or the
      router is lost; plain methods and generators (which run in threads) check it to stop early.
      Async methods are cancelled (asyncio.CancelledError) as well.
    - `deadline`: time.time() by which the router gives up, or None.
    - `task_id`, `attempt`: set when the call is an attempt of a background task.
    - `traceparent`, `tracestate`: the caller's W3C trace context as it sent it (REQUEST.trace), or None.
    - `progress(value)`: reports a task's progress (any JSON); safe from any thread, throttled to one
      PROGRESS per 100 ms (the latest value wins; the last one goes out before the outcome).
    """

    def __init__(
        self,
        request_id: int,
        method: str,
        deadline: Optional[float],
        task_id: Optional[str],
        attempt: Optional[int],
        report: Callable[[Any], None],
        traceparent: Optional[str] = None,
        tracestate: Optional[str] = None,
    ) -> None:
        self.request_id = request_id
        self.method = method
        self.deadline = deadline
        self.task_id = task_id
        self.attempt = attempt
        self.cancelled = threading.Event()
        self.cancel_reason: Optional[BaseException] = None
        self.traceparent = traceparent
        self.tracestate = tracestate
        self._report = report

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    def progress(self, value: Any) -> None:
        self._report(value)


def describe(specs: List[MethodSpec], service: str) -> Dict[str, Any]:
    """HELLO.methods for these methods."""
    methods: Dict[str, Any] = {}
    for spec in specs:
        info: Dict[str, Any] = {"stream": spec.stream}
        if spec.description is not None:
            info["description"] = spec.description
        if spec.params is not None:
            info["params"] = spec.params
        if spec.metadata is not None:
            info["metadata"] = spec.metadata
        if spec.task is not None:
            info["task"] = spec.task
        methods[f"{service}.{spec.name}"] = info
    return methods
