"""One exception hierarchy for everything VoidRail raises, keyed by the protocol's error codes (PROTOCOL.md §11).

Every error has `code` (stable, what programs branch on), `message` (for humans) and `data` (details,
shape per code). An ERROR from the wire is rebuilt as the class of its code; an unknown code (a
service's own, e.g. OUT_OF_STOCK) stays a plain VoidRailError carrying it.
"""

from __future__ import annotations

import builtins
import traceback
from typing import Any, Dict, Optional, Type

# PROTOCOL.md §11: senders keep an ERROR within the header limit.
MAX_MESSAGE_CHARS = 4096
MAX_STACK_CHARS = 8192
MAX_DATA_BYTES = 16 * 1024


class VoidRailError(Exception):
    """An ERROR from the router or a service, or one raised locally. Subclasses set their `code`."""

    code: str = "ERROR"

    def __init__(self, message: str = "", data: Any = None, *, code: Optional[str] = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(f"{self.code}: {message}")
        self.message = message
        self.data = data


class NoSuchMethodError(VoidRailError):
    """NO_SUCH_METHOD: no registered dealer offers the method."""

    code = "NO_SUCH_METHOD"


class QueueFullError(VoidRailError):
    """QUEUE_FULL: the method's queue at the router is at its limit."""

    code = "QUEUE_FULL"


class TimeoutError(VoidRailError, builtins.TimeoutError):  # noqa: A001 - the protocol's name; also Python's TimeoutError
    """TIMEOUT: the call's timeout passed (at the router or locally). `except TimeoutError` (the builtin) catches it too."""

    code = "TIMEOUT"


class CancelledError(VoidRailError):
    """CANCELLED: the request was cancelled. Not asyncio.CancelledError, which cancels the awaiting task."""

    code = "CANCELLED"


class DealerLostError(VoidRailError):
    """DEALER_LOST: the dealer running the call went away after it had started answering."""

    code = "DEALER_LOST"


class AuthError(VoidRailError):
    """AUTH_FAILED: a bad or missing API key, or not authenticated yet."""

    code = "AUTH_FAILED"


class ValidationError(VoidRailError):
    """VALIDATION_ERROR: arguments, the stream flag, an option or a result failed a check; `data["path"]` names it."""

    code = "VALIDATION_ERROR"


class RemoteError(VoidRailError):
    """REMOTE_ERROR: the service method raised; `data` is {name, message, stack?} of the original exception."""

    code = "REMOTE_ERROR"


class ProtocolError(VoidRailError):
    """PROTOCOL_ERROR: the protocol was broken; `data["reason"]` says how."""

    code = "PROTOCOL_ERROR"


class ShuttingDownError(VoidRailError):
    """SHUTTING_DOWN: the router (or a draining dealer) is stopping."""

    code = "SHUTTING_DOWN"


class ConnectionLostError(VoidRailError, builtins.ConnectionError):
    """CONNECTION_LOST (local): the connection closed with the call unanswered (ConnectionError in TypeScript)."""

    code = "CONNECTION_LOST"


class TaskNotFoundError(VoidRailError):
    """TASK_NOT_FOUND: no task has the id (never submitted, or purged)."""

    code = "TASK_NOT_FOUND"


class RevisionError(VoidRailError):
    """UNSUPPORTED_REVISION (local): the revision in force on the connection lacks what was asked."""

    code = "UNSUPPORTED_REVISION"


CallTimeoutError = TimeoutError  # the name examples/python/client.py used

ERROR_CLASSES: Dict[str, Type[VoidRailError]] = {
    cls.code: cls
    for cls in (
        NoSuchMethodError,
        QueueFullError,
        TimeoutError,
        CancelledError,
        DealerLostError,
        AuthError,
        ValidationError,
        RemoteError,
        ProtocolError,
        ShuttingDownError,
        ConnectionLostError,
        TaskNotFoundError,
        RevisionError,
    )
}


def make_error(code: str, message: str, data: Any = None) -> VoidRailError:
    """The typed error for `code`; an unknown code stays a VoidRailError carrying it."""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        return VoidRailError(message, data, code=code)
    return cls(message, data)


def error_from_wire(header: Dict[str, Any]) -> VoidRailError:
    """Rebuilds an ERROR header ({code, message, data?}) as its class."""
    code = header.get("code")
    message = header.get("message")
    return make_error(code if isinstance(code, str) else "ERROR", message if isinstance(message, str) else "", header.get("data"))


def error_to_wire(error: BaseException, with_stack: bool = True) -> Dict[str, Any]:
    """An exception as ERROR fields: a VoidRailError keeps its code, anything else is REMOTE_ERROR with {name, message, stack}."""
    import json

    if isinstance(error, VoidRailError):
        wire: Dict[str, Any] = {"code": error.code, "message": error.message[:MAX_MESSAGE_CHARS]}
        data = error.data
    else:
        message = str(error)[:MAX_MESSAGE_CHARS]
        wire = {"code": "REMOTE_ERROR", "message": message}
        data = {"name": type(error).__name__, "message": message}
        if with_stack:
            stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            data["stack"] = stack[-MAX_STACK_CHARS:]
    if data is not None:
        try:
            encoded = json.dumps(data, allow_nan=False, separators=(",", ":"))
            wire["data"] = data if len(encoded) <= MAX_DATA_BYTES else {"truncated": True}
        except (TypeError, ValueError):
            wire["data"] = {"truncated": True}
    return wire


def explain_refused_key(error: VoidRailError, key_given: bool, role: str) -> VoidRailError:
    """The router says BAD_KEY for a wrong key and for none (§9); the peer knows which, and says so."""
    if not isinstance(error, AuthError) or not isinstance(error.data, dict) or error.data.get("reason") != "BAD_KEY":
        return error
    text = f"the router refused this {role}'s API key" if key_given else f"the router requires a {role} API key and none was given"
    return AuthError(text, error.data)
