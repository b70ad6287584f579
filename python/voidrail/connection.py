"""What the client and the dealer share about their DEALER socket: where the router is, keys, CURVE, heartbeats."""

from __future__ import annotations

import os
import re
from typing import Optional, Union

import zmq
from zmq.utils import z85

from .errors import AuthError, ValidationError

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
ENDPOINT = re.compile(r"^(tcp|ipc)://.+")
API_KEY = re.compile(r"^[\x21-\x7e]{1,512}$")
# Reconnection after a lost router: from 100 ms doubling to 1 s, as the TypeScript peers do.
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 1000

Key = Union[str, bytes]


def router_address(address: Optional[str] = None) -> str:
    """`address`, else VOIDRAIL_ROUTER_ADDRESS, else VOIDRAIL_HOST/VOIDRAIL_PORT, else tcp://127.0.0.1:5555."""
    if address is None:
        address = os.environ.get("VOIDRAIL_ROUTER_ADDRESS") or None
    if address is None:
        host = os.environ.get("VOIDRAIL_HOST") or "127.0.0.1"
        port = os.environ.get("VOIDRAIL_PORT") or "5555"
        address = f"tcp://{'[' + host + ']' if ':' in host else host}:{port}"
    if not isinstance(address, str) or not ENDPOINT.match(address):
        raise ValidationError(f"router address must look like tcp://host:port or ipc:///path, not {address!r}"[:200], {"path": "router_address"})
    return address


def api_key_or_env(api_key: Optional[str]) -> Optional[str]:
    key = api_key if api_key is not None else (os.environ.get("VOIDRAIL_API_KEY") or None)
    if key is not None and (not isinstance(key, str) or not API_KEY.match(key)):
        raise ValidationError("api_key must be 1-512 printable ASCII characters without spaces", {"path": "api_key"})
    return key


Z85_KEY = re.compile(rb"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
HEX_KEY = re.compile(rb"^[0-9a-fA-F]{64}$")


def _z85(name: str, key: Key) -> bytes:
    """A key as its 40 Z85 characters: given as Z85, as 64 hex digits (as the TypeScript peers take), or as 32 raw bytes."""
    try:
        raw = key.strip().encode("ascii") if isinstance(key, str) else bytes(key)
    except (UnicodeEncodeError, TypeError):
        raise ValidationError(f"{name} must be a CURVE key: 40 Z85 characters, 64 hex digits or 32 raw bytes", {"path": name}) from None
    if len(raw) == 32 and not isinstance(key, str):
        return z85.encode(raw)  # a raw 32-byte key
    if HEX_KEY.match(raw):
        return z85.encode(bytes.fromhex(raw.decode("ascii")))
    if not Z85_KEY.match(raw):
        raise ValidationError(f"{name} must be a CURVE key: 40 Z85 characters, 64 hex digits or 32 raw bytes", {"path": name})
    return raw


def curve_keys_or_env(curve_server_key: Optional[Key], curve_secret_key: Optional[Key]) -> "tuple[Optional[Key], Optional[Key]]":
    """As the TypeScript peers: the options, then VOIDRAIL_CURVE_SERVER_KEY / VOIDRAIL_CURVE_SECRET_KEY.
    A secret key from the environment alone (no server key anywhere) is ignored: beside a router it is the router's."""
    server = curve_server_key if curve_server_key is not None else (os.environ.get("VOIDRAIL_CURVE_SERVER_KEY", "").strip() or None)
    if server is None:
        return None, curve_secret_key
    secret = curve_secret_key if curve_secret_key is not None else (os.environ.get("VOIDRAIL_CURVE_SECRET_KEY", "").strip() or None)
    return server, secret


def curve_public_of(curve_secret_key: Key) -> bytes:
    """The public key (Z85) that belongs to a secret key: the peer's CURVE identity."""
    return zmq.curve_public(_z85("curve_secret_key", curve_secret_key))


def check_curve_keys(curve_server_key: Optional[Key] = None, curve_secret_key: Optional[Key] = None, curve_public_key: Optional[Key] = None) -> None:
    """ValidationError unless the keys are Z85 (40 characters) or raw (32 bytes), the client pair given together, with a server key."""
    if curve_server_key is None:
        if curve_secret_key is not None or curve_public_key is not None:
            raise ValidationError("curve_secret_key and curve_public_key need curve_server_key", {"path": "curve_server_key"})
        return
    if curve_secret_key is None and curve_public_key is not None:
        raise ValidationError("curve_public_key needs curve_secret_key", {"path": "curve_secret_key"})
    for name, key in (("curve_server_key", curve_server_key), ("curve_secret_key", curve_secret_key), ("curve_public_key", curve_public_key)):
        if key is not None:
            _z85(name, key)


def configure_socket(
    socket: zmq.Socket,
    *,
    heartbeat_interval: float,
    heartbeat_timeout: float,
    curve_server_key: Optional[Key] = None,
    curve_secret_key: Optional[Key] = None,
    curve_public_key: Optional[Key] = None,
) -> None:
    """Socket options set before connecting: no linger, reconnection pace, ZMTP heartbeats, CURVE client keys."""
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    if heartbeat_interval > 0:
        # PROTOCOL.md §10: peers SHOULD heartbeat the router to notice a dead one.
        socket.setsockopt(zmq.HEARTBEAT_IVL, max(1, int(heartbeat_interval * 1000)))
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, max(1, int(heartbeat_timeout * 1000)))
        socket.setsockopt(zmq.HEARTBEAT_TTL, max(100, int(heartbeat_timeout * 1000)))
    if curve_server_key is not None:
        if not zmq.has("curve"):
            raise ValidationError("this libzmq has no CURVE support", {"path": "curve_server_key"})
        if curve_secret_key is None and curve_public_key is not None:
            raise ValidationError("curve_public_key needs curve_secret_key", {"path": "curve_secret_key"})
        if curve_secret_key is not None and curve_public_key is None:
            curve_public_key = curve_public_of(curve_secret_key)  # the pair's public half, computed by libzmq
        if curve_secret_key is None:
            # No long-term client key given: a fresh pair per socket (the router then knows the client by its API key).
            curve_public_key, curve_secret_key = zmq.curve_keypair()
        socket.curve_serverkey = _z85("curve_server_key", curve_server_key)
        socket.curve_publickey = _z85("curve_public_key", curve_public_key)  # type: ignore[arg-type]
        socket.curve_secretkey = _z85("curve_secret_key", curve_secret_key)  # type: ignore[arg-type]
    elif curve_secret_key is not None or curve_public_key is not None:
        raise ValidationError("curve_secret_key and curve_public_key need curve_server_key", {"path": "curve_server_key"})


# Monitor events that end a handshake without a connection: CURVE refused (a ZAP status such as 400), or mismatched mechanisms.
HANDSHAKE_FAILED_EVENTS = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


def handshake_failure(event: int, value: int, address: str, role: str) -> AuthError:
    """The AuthError for a failed security handshake, saying what to check."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        text = (
            f"the router at {address} refused this {role}'s CURVE key (status {value}): "
            f"its public key is not on the router's curveAllow list for {role}s"
        )
        return AuthError(text, {"reason": "CURVE_REFUSED", "status": value})
    return AuthError(
        f"the security handshake with {address} failed: check curve_server_key (the router's public key) and that the router uses CURVE",
        {"reason": "HANDSHAKE"},
    )
