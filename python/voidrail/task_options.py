"""Background-task options and answers (PROTOCOL.md §15): seconds here, milliseconds on the wire. Pure."""

from __future__ import annotations

import datetime
import math
import re
from typing import Any, Dict, Iterable, Optional, Union

from .errors import ProtocolError, ValidationError, VoidRailError, make_error

TASK_STATES = ("blocked", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "revoked", "expired")
FINAL_TASK_STATES = frozenset(("succeeded", "failed", "revoked", "expired"))
TASK_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")  # UUIDv7
MAX_SECONDS = 10 * 365 * 86_400  # the longest duration a task option takes (ten years)
MAX_TIMEOUT_MS = 2_147_483_647


def seconds_to_ms(name: str, value: Any, positive: bool = False, maximum: float = MAX_SECONDS, path: Optional[str] = None) -> int:
    """Seconds (int or float) as whole milliseconds; ValidationError naming `path` when out of range."""
    path = path or f"options.{name}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a number of seconds, not {value!r}"[:200], {"path": path})
    if value < 0 or (positive and value == 0) or value > maximum:
        low = "above 0" if positive else "at least 0"
        raise ValidationError(f"{name} must be {low} and at most {maximum} seconds, not {value}", {"path": path})
    return int(math.floor(value * 1000 + 0.5))


def timeout_ms(seconds: Any, name: str = "timeout") -> int:
    """A call timeout in seconds as REQUEST.timeoutMs (1 … 2 147 483 647)."""
    return max(1, min(MAX_TIMEOUT_MS, seconds_to_ms(name, seconds, positive=True, maximum=MAX_TIMEOUT_MS / 1000, path=name)))


def eta_to_ms(eta: Union[datetime.datetime, str, int, float]) -> int:
    """A datetime (naive: local time), an ISO 8601 string or epoch seconds, as epoch ms."""
    if isinstance(eta, str):
        try:
            eta = datetime.datetime.fromisoformat(eta.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"eta is not an ISO 8601 time: {eta!r}"[:200], {"path": "options.eta"}) from None
    if isinstance(eta, datetime.datetime):
        eta = eta.timestamp()
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0:
        raise ValidationError("eta must be a datetime, an ISO 8601 string or epoch seconds", {"path": "options.eta"})
    return int(math.floor(eta * 1000 + 0.5))


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be an integer from {low} to {high}, not {value!r}"[:200], {"path": f"options.{name}"})
    return value


def task_options(
    priority: Optional[int] = None,
    countdown: Optional[float] = None,
    eta: Any = None,
    expires: Optional[float] = None,
    time_limit: Optional[float] = None,
    retries: Optional[int] = None,
    retry_delay: Optional[float] = None,
    backoff: Optional[str] = None,
    retry_on: Union[str, Iterable[str], None] = None,
    idempotency_key: Optional[str] = None,
    lost_retries: Optional[int] = None,
    result_ttl: Optional[float] = None,
) -> Dict[str, Any]:
    """SUBMIT.options in wire form (milliseconds): only the ones given. ValidationError names a bad one."""
    wire: Dict[str, Any] = {}
    if priority is not None:
        wire["priority"] = _integer("priority", priority, 0, 9)
    if countdown is not None and eta is not None:
        raise ValidationError("give countdown or eta, not both", {"path": "options.eta"})
    if countdown is not None:
        wire["countdownMs"] = seconds_to_ms("countdown", countdown)
    if eta is not None:
        wire["etaMs"] = eta_to_ms(eta)
    if expires is not None:
        wire["expiresMs"] = seconds_to_ms("expires", expires, positive=True)
    if time_limit is not None:
        wire["timeLimitMs"] = seconds_to_ms("time_limit", time_limit, positive=True, maximum=2_147_483)
    if retries is not None:
        wire["retries"] = _integer("retries", retries, 0, 1000)
    if retry_delay is not None:
        wire["retryDelayMs"] = seconds_to_ms("retry_delay", retry_delay)
    if backoff is not None:
        if backoff not in ("fixed", "exponential"):
            raise ValidationError(f'backoff must be "fixed" or "exponential", not {backoff!r}'[:200], {"path": "options.backoff"})
        wire["backoff"] = backoff
    if retry_on is not None:
        codes = [retry_on] if isinstance(retry_on, str) else list(retry_on)
        if len(codes) > 64 or not all(isinstance(code, str) and 1 <= len(code) <= 128 for code in codes):
            raise ValidationError("retry_on must be at most 64 error codes or names (1 to 128 characters)", {"path": "options.retry_on"})
        wire["retryOn"] = codes
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 256:
            raise ValidationError("idempotency_key must be a string of 1 to 256 characters", {"path": "options.idempotency_key"})
        wire["idempotencyKey"] = idempotency_key
    if lost_retries is not None:
        wire["lostRetries"] = _integer("lost_retries", lost_retries, 0, 1000)
    if result_ttl is not None:
        wire["resultTtlMs"] = seconds_to_ms("result_ttl", result_ttl, positive=True)
    return wire


def check_task_id(task_id: Any) -> str:
    """`task_id` if it is a UUIDv7 string, else ValidationError: a malformed id is never sent."""
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.match(task_id):
        raise ValidationError(f"not a task id: {str(task_id)[:80]!r} (task ids are UUIDv7 strings)", {"path": "taskId"})
    return task_id


def check_task(value: Any, what: str) -> Dict[str, Any]:
    """`value` when it is a task (§15.4: the fields a caller branches on), else ProtocolError."""
    if not (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and isinstance(value.get("method"), str)
        and value.get("state") in TASK_STATES
        and isinstance(value.get("attempts"), int)
    ):
        raise ProtocolError(f"the router's answer to {what} is not a task", {"reason": "BAD_ANSWER"})
    return value


def task_failure(task: Dict[str, Any]) -> VoidRailError:
    """The error a finished, unsuccessful task ends with, rebuilt by its code; the task rides along as `.task`."""
    wire = task.get("error") if isinstance(task.get("error"), dict) else None
    if wire is None:
        wire = {"code": "ERROR", "message": f"task {task['id']} ended {task['state']}"}
    error = make_error(str(wire.get("code")), str(wire.get("message", "")), wire.get("data"))
    error.task = task  # type: ignore[attr-defined]
    return error
