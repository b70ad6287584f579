"""Client: the AsyncClient for synchronous code (scripts, threads), run on an event loop of its own thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, TypeVar

from .aio_client import AsyncClient
from .connection import Key

T = TypeVar("T")


class Client:
    """`with Client("tcp://127.0.0.1:5555") as client: client.invoke("EchoService.echo", "hi")`.

    Takes AsyncClient's arguments and has its methods, blocking: `stream` and `watch_task` are
    plain iterators. The calls of several threads may share one Client (each blocks only itself).
    """

    def __init__(
        self,
        router_address: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 30,
        curve_server_key: Optional[Key] = None,
        curve_secret_key: Optional[Key] = None,
        curve_public_key: Optional[Key] = None,
        **options: Any,
    ) -> None:
        self._async = AsyncClient(router_address, api_key, timeout, curve_server_key, curve_secret_key, curve_public_key, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="voidrail-client", daemon=True)
        self._thread.start()
        try:
            self._run(self._async.connect())
        except BaseException:
            self._stop_loop()
            raise

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def welcome(self) -> Optional[Dict[str, Any]]:
        return self._async.welcome

    @property
    def revision(self) -> int:
        return self._async.revision

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._async.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def _iterate(self, make: Callable[[], Any]) -> Iterator[Any]:
        iterator = self._run(_call(make))
        try:
            while True:
                try:
                    yield self._run(iterator.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(iterator.aclose())

    def invoke(self, method: str, *args: Any, **options: Any) -> Any:
        return self._run(self._async.invoke(method, *args, **options))

    def stream(self, method: str, *args: Any, **options: Any) -> Iterator[Any]:
        return self._iterate(lambda: self._async.stream(method, *args, **options))

    def discover_services(self) -> Dict[str, Any]:
        return self._run(self._async.discover_services())

    def get_router_info(self) -> Dict[str, Any]:
        return self._run(self._async.get_router_info())

    def get_queue_status(self) -> Dict[str, Any]:
        return self._run(self._async.get_queue_status())

    def get_clusters(self) -> List[Dict[str, Any]]:
        return self._run(self._async.get_clusters())

    def submit(self, method: str, *args: Any, **options: Any) -> Dict[str, Any]:
        return self._run(self._async.submit(method, *args, **options))

    def get_task(self, task_id: str) -> Dict[str, Any]:
        return self._run(self._async.get_task(task_id))

    def wait_task(self, task_id: str, timeout: Optional[float] = 30) -> Any:
        return self._run(self._async.wait_task(task_id, timeout))

    def watch_task(self, task_id: str, timeout: Optional[float] = None) -> Iterator[Dict[str, Any]]:
        return self._iterate(lambda: self._async.watch_task(task_id, timeout))

    def revoke_task(self, task_id: str, terminate: bool = False) -> Dict[str, Any]:
        return self._run(self._async.revoke_task(task_id, terminate))

    def list_tasks(self, **options: Any) -> Dict[str, Any]:
        return self._run(self._async.list_tasks(**options))


async def _call(make: Callable[[], T]) -> T:
    # AsyncClient.stream checks its arguments when called: call it on the loop's thread, raising here.
    return make()
