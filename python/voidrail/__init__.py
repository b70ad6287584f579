"""VoidRail for Python: an asyncio client (AsyncClient), a synchronous one (Client) and services (ServiceDealer).

    import voidrail

    async with voidrail.AsyncClient("tcp://127.0.0.1:5555") as client:
        await client.invoke("EchoService.echo", "hi")

The wire protocol is docs/PROTOCOL.md of the VoidRail repository; pyzmq is the only dependency.
"""

from .aio_client import AsyncClient
from .errors import (
    AuthError,
    CallTimeoutError,
    CancelledError,
    ConnectionLostError,
    DealerLostError,
    NoSuchMethodError,
    ProtocolError,
    QueueFullError,
    RemoteError,
    RevisionError,
    ShuttingDownError,
    TaskNotFoundError,
    TimeoutError,
    ValidationError,
    VoidRailError,
)
from .protocol import PROTOCOL_VERSION
from .sync_client import Client

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AuthError",
    "CallContext",
    "CallTimeoutError",
    "CancelledError",
    "Client",
    "ConnectionLostError",
    "DealerLostError",
    "NoSuchMethodError",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "QueueFullError",
    "RemoteError",
    "RevisionError",
    "ServiceDealer",
    "ShuttingDownError",
    "TaskNotFoundError",
    "TimeoutError",
    "ValidationError",
    "VoidRailError",
    "service_method",
]

from .dealer import ServiceDealer  # noqa: E402
from .service import CallContext, service_method  # noqa: E402
