"""VRP1 messages as frames and back (PROTOCOL.md §2, §5, §5.1). Pure: no sockets, no clocks.

A message is [b"VRP1", KIND, header JSON, payload JSON?, binary frame...]. Values travel as JSON;
bytes-like values (bytes, bytearray, memoryview) travel as binary frames beside it (revision 3):
the JSON holds null where each one was and the header's `binary` says where and of what type.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import ProtocolError

PROTOCOL_ID = b"VRP1"
PROTOCOL_VERSION = 4  # the highest revision these peers speak (HELLO.version)
TASKS_REVISION = 2  # SUBMIT, TASK, PROGRESS
BINARY_REVISION = 3  # binary frames
# Compression (§5.2), tags and require, setup/READY, trace context, router → dealer DRAIN (§12).
REVISION_4 = 4

PAYLOAD_KINDS = frozenset((b"REQUEST", b"RESULT", b"CHUNK", b"SUBMIT"))
MAX_HEADER_BYTES = 65_536
MAX_HELLO_BYTES = 1_048_576
MAX_ID = 2**53 - 1
MAX_CREDIT = 2_147_483_647
MAX_BINARY_ENTRIES = 1024
MAX_BINARY_DEPTH = 32

# A memoryview's struct format → the JavaScript type name its frame is announced as (§5.1).
_TYPE_BY_FORMAT = {
    "B": "Uint8Array",
    "b": "Int8Array",
    "c": "Uint8Array",
    "h": "Int16Array",
    "H": "Uint16Array",
    "i": "Int32Array",
    "I": "Uint32Array",
    "l": "Int32Array",
    "L": "Uint32Array",
    "q": "BigInt64Array",
    "Q": "BigUint64Array",
    "f": "Float32Array",
    "d": "Float64Array",
}
_ELEMENT_SIZE = {
    "Uint8Array": 1,
    "Int8Array": 1,
    "Uint8ClampedArray": 1,
    "DataView": 1,
    "ArrayBuffer": 1,
    "Int16Array": 2,
    "Uint16Array": 2,
    "Int32Array": 4,
    "Uint32Array": 4,
    "Float32Array": 4,
    "Float64Array": 8,
    "BigInt64Array": 8,
    "BigUint64Array": 8,
}

Frame = Union[bytes, memoryview]
BYTES_LIKE = (bytes, bytearray, memoryview)


class Message(NamedTuple):
    kind: str
    header: Dict[str, Any]
    payload: Optional[bytes]
    binary: Sequence[bytes]


class Encoded(NamedTuple):
    """A value ready to send: its JSON text, and the header's `binary` entries with their frames (empty when none)."""

    json: bytes
    slots: List[Dict[str, Any]]
    frames: List[Frame]


class _HasBinary(Exception):
    """Raised by json's `default` hook: the value holds bytes, so walk it to find where."""


def _no_binary(value: Any) -> Any:
    if isinstance(value, BYTES_LIKE):
        raise _HasBinary()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(value: Any) -> bytes:
    """Compact, strict JSON (NaN and Infinity are not JSON), as UTF-8."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")


def encode_value(value: Any) -> Encoded:
    """`value` as JSON with its bytes-like parts lifted out as binary frames. Raises TypeError/ValueError for a value JSON cannot hold."""
    try:
        # Fast path: plain JSON costs nothing extra; only a value that holds bytes is walked.
        return Encoded(json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=_no_binary).encode("utf-8"), [], [])
    except _HasBinary:
        pass
    slots: List[Dict[str, Any]] = []
    frames: List[Frame] = []
    stripped = _lift_binary(value, [], slots, frames, 0)
    if len(slots) > MAX_BINARY_ENTRIES:
        raise ValueError(f"at most {MAX_BINARY_ENTRIES} binary values fit in one message, this has {len(slots)}")
    return Encoded(encode_json(stripped), slots, frames)


def _lift_binary(value: Any, path: List[Union[str, int]], slots: List[Dict[str, Any]], frames: List[Frame], depth: int) -> Any:
    if isinstance(value, BYTES_LIKE):
        if len(path) > MAX_BINARY_DEPTH:
            raise ValueError(f"a binary value sits {len(path)} levels deep; at most {MAX_BINARY_DEPTH} are allowed")
        if isinstance(value, memoryview):
            kind = _TYPE_BY_FORMAT.get(value.format.lstrip("@=<"), "Uint8Array")
            # Frames are sent without copying: only a read-only, contiguous view is safe to hand over as it is.
            frames.append(value if value.c_contiguous and value.readonly else value.tobytes())
        else:
            kind = "Uint8Array"
            frames.append(value if isinstance(value, bytes) else bytes(value))
        slots.append({"path": list(path), "type": kind})
        return None
    if depth > 256:
        raise ValueError("value is nested too deeply")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                key = json.loads(json.dumps({key: None}))  # json's own key conversion (int, float, bool, None)
                key = next(iter(key))
            path.append(key)
            out[key] = _lift_binary(item, path, slots, frames, depth + 1)
            path.pop()
        return out
    if isinstance(value, (list, tuple)):
        out_list = []
        for index, item in enumerate(value):
            path.append(index)
            out_list.append(_lift_binary(item, path, slots, frames, depth + 1))
            path.pop()
        return out_list
    return value


def decode_value(payload: bytes, slots: Optional[List[Dict[str, Any]]], frames: Sequence[bytes], what: str = "payload") -> Any:
    """The JSON payload with each binary frame put back where its slot says, as `bytes`. ProtocolError when they do not fit."""
    try:
        value = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"{what} is not UTF-8 JSON: {error}", {"reason": "BAD_JSON", "frame": 3}) from None
    if not slots:
        return value
    if len(slots) != len(frames):
        raise ProtocolError(f"{what} lists {len(slots)} binary values but {len(frames)} frames came", {"reason": "FRAME_COUNT"})
    holder = [value]
    for slot, frame in zip(slots, frames):
        path = slot.get("path") if isinstance(slot, dict) else None
        kind = slot.get("type") if isinstance(slot, dict) else None
        size = _ELEMENT_SIZE.get(kind) if isinstance(kind, str) else None
        if not isinstance(path, list) or size is None:
            raise ProtocolError(f"{what}: a binary entry is not {{path, type}} with a known type", {"reason": "SCHEMA", "path": "binary"})
        if "compression" in slot or "size" in slot:
            frame = inflate(frame, slot.get("compression"), slot.get("size"), what)
        nbytes = memoryview(frame).nbytes
        if nbytes % size != 0:
            raise ProtocolError(f"{what}: a {kind} frame of {nbytes} bytes is not whole elements", {"reason": "SCHEMA", "path": "binary"})
        container: Any = holder
        key: Any = 0
        for step in path:
            container = container[key] if _has(container, key) else None
            key = step
            if not ((isinstance(container, dict) and isinstance(step, str)) or (isinstance(container, list) and isinstance(step, int) and not isinstance(step, bool))):
                raise ProtocolError(f"{what}: binary path {path} does not lead into the payload", {"reason": "SCHEMA", "path": "binary"})
        if not _has(container, key) or container[key] is not None:
            raise ProtocolError(f"{what}: binary path {path} does not lead to a null", {"reason": "SCHEMA", "path": "binary"})
        container[key] = bytes(frame)
    return holder[0]


MAX_INFLATED_BYTES = 1_073_741_824  # §5.2: a compressed slot's `size` bound


def inflate(frame: bytes, codec: Any, size: Any, what: str = "payload") -> bytes:
    """A compressed binary frame (§5.2) inflated, never to more than `size` + 1 bytes. ProtocolError when the slot's
    fields are wrong, the data is not valid for its codec, it inflates to another length, or the codec is missing here."""
    if codec is None or size is None:
        raise ProtocolError(f"{what}: a binary entry has compression or size without the other", {"reason": "SCHEMA", "path": "binary"})
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_INFLATED_BYTES:
        raise ProtocolError(f"{what}: a compressed binary entry's size must be 0 to {MAX_INFLATED_BYTES}", {"reason": "SCHEMA", "path": "binary"})
    if codec == "gzip":
        # wbits 31: a gzip (RFC 1952) member, header and trailer checked by zlib.
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(bytes(frame), size + 1)
        except zlib.error as error:
            raise ProtocolError(f"{what}: a gzip frame is not valid gzip data: {error}", {"reason": "BAD_COMPRESSION", "codec": "gzip"}) from None
        complete = inflater.eof and not inflater.unconsumed_tail
    elif codec == "zstd":
        data, complete = _inflate_zstd(bytes(frame), size, what)
    else:
        raise ProtocolError(f"{what}: unknown compression {str(codec)[:40]!r} (zstd and gzip exist)", {"reason": "SCHEMA", "path": "binary"})
    if len(data) != size or not complete:
        raise ProtocolError(
            f"{what}: a {codec} frame inflates to {f'more than {size}' if len(data) > size else len(data)} bytes, its entry says {size}",
            {"reason": "BAD_COMPRESSION", "codec": codec},
        )
    return data


def zstd_module() -> Any:
    """The standard library's compression.zstd (Python 3.14), else the zstandard package, else None."""
    try:
        from compression import zstd  # type: ignore[import-not-found]

        return zstd
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]

        return zstandard
    except ImportError:
        return None


def _inflate_zstd(frame: bytes, size: int, what: str) -> "tuple[bytes, bool]":
    module = zstd_module()
    if module is None:
        raise ProtocolError(
            f"{what}: a binary value came compressed with zstd, which this Python cannot inflate "
            "(it needs Python 3.14's compression.zstd or the zstandard package); gzip works everywhere",
            {"reason": "UNSUPPORTED_COMPRESSION", "codec": "zstd"},
        )
    try:
        if module.__name__ == "compression.zstd":
            inflater = module.ZstdDecompressor()
            data = inflater.decompress(frame, max_length=size + 1)
            return data, inflater.eof
        # zstandard: a reader, so that at most size + 1 bytes are ever inflated, whatever the frame claims.
        with module.ZstdDecompressor().stream_reader(frame) as reader:
            parts = []
            wanted = size + 1
            while wanted > 0:
                part = reader.read(wanted)
                if not part:
                    break
                parts.append(part)
                wanted -= len(part)
        return b"".join(parts), True
    except Exception as error:  # noqa: BLE001 - each module has its own error class
        raise ProtocolError(f"{what}: a zstd frame is not valid zstd data: {error}", {"reason": "BAD_COMPRESSION", "codec": "zstd"}) from None


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    if isinstance(container, list):
        return isinstance(key, int) and 0 <= key < len(container)
    return False


def encode_message(kind: str, header: Dict[str, Any], payload: Optional[Encoded] = None) -> List[Frame]:
    """The frames of one message; a payload's binary entries go into the header as `binary`."""
    if payload is None:
        return [PROTOCOL_ID, kind.encode("ascii"), encode_json(header)]
    if payload.slots:
        header = {**header, "binary": payload.slots}
        return [PROTOCOL_ID, kind.encode("ascii"), encode_json(header), payload.json, *payload.frames]
    return [PROTOCOL_ID, kind.encode("ascii"), encode_json(header), payload.json]


def decode_message(frames: Sequence[bytes]) -> Message:
    """One received message (DEALER side). ProtocolError for a message to drop; `data["id"]` set when the id could be read."""
    if len(frames) < 3:
        raise ProtocolError(f"a message has at least 3 frames, this one {len(frames)}", {"reason": "FRAME_COUNT"})
    if frames[0] != PROTOCOL_ID:
        raise ProtocolError("frame 0 is not VRP1", {"reason": "PROTOCOL_ID"})
    kind_frame = bytes(frames[1])
    if len(frames[2]) > MAX_HEADER_BYTES:
        raise ProtocolError("header over 64 KiB", {"reason": "HEADER_TOO_LARGE"})
    try:
        # Decoding first spares json its encoding detection on bytes.
        header = json.loads(bytes(frames[2]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("header is not UTF-8 JSON", {"reason": "BAD_JSON", "frame": 2}) from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object", {"reason": "NOT_OBJECT", "frame": 2})
    kind = kind_frame.decode("ascii", "replace")
    message_id = header.get("id")
    known_id = {"id": message_id} if is_id(message_id) else {}
    if kind_frame in PAYLOAD_KINDS:
        binary = header.get("binary")
        extra = len(binary) if isinstance(binary, list) else 0
        if len(frames) != 4 + extra:
            raise ProtocolError(f"{kind} has {len(frames)} frames, {4 + extra} expected", {"reason": "FRAME_COUNT", **known_id})
        return Message(kind, header, frames[3], frames[4:])
    if len(frames) != 3:
        raise ProtocolError(f"{kind} has {len(frames)} frames, 3 expected", {"reason": "FRAME_COUNT", **known_id})
    return Message(kind, header, None, ())


def is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def payload_value(message: Message, what: str) -> Any:
    """A RESULT's or CHUNK's value, binary frames put back."""
    binary = message.header.get("binary")
    if binary is not None and not isinstance(binary, list):
        raise ProtocolError(f"{what}: header.binary is not a list", {"reason": "SCHEMA", "path": "binary"})
    return decode_value(message.payload or b"null", binary, message.binary, what)


def split_method(method: Any) -> Tuple[str, str]:
    """("Service", "method"), or ValueError when `method` is not of the form Service.method."""
    from .errors import ValidationError

    if isinstance(method, str):
        service, dot, name = method.partition(".")
        if dot and _is_name(service) and _is_name(name):
            return service, name
    raise ValidationError(f"method must look like Service.method (e.g. EchoService.echo), not {str(method)[:80]!r}", {"path": "method"})


_CHECKED_METHODS: set = set()


def check_method(method: Any) -> None:
    """split_method's check, remembered for the names seen (a client calls the same few methods over and over)."""
    if method in _CHECKED_METHODS:
        return
    split_method(method)
    if len(_CHECKED_METHODS) < 4096:
        _CHECKED_METHODS.add(method)


def _is_name(text: str) -> bool:
    return 0 < len(text) <= 128 and (text[0].isascii() and (text[0].isalpha() or text[0] == "_")) and all(
        c.isascii() and (c.isalnum() or c == "_") for c in text
    )


_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_LABEL_VALUE = re.compile(r"^[\x21-\x7e]{1,128}$")


def check_labels(labels: Any, what: str) -> Optional[Dict[str, str]]:
    """A dealer's HELLO.tags or a request's `require` (§4.1, §7.4): at most 32 name: value strings, names like gpu or
    region.zone, values 1-128 printable ASCII without spaces. ValidationError naming the bad entry."""
    from .errors import ValidationError

    if labels is None:
        return None
    if not isinstance(labels, dict) or len(labels) > 32:
        raise ValidationError(f"{what} must be a dict of at most 32 name: value strings", {"path": what})
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name):
            raise ValidationError(f"{what}: the name {name!r} must be a letter or _ then letters, digits, _ . - (at most 64)", {"path": f"{what}.{name}"})
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ValidationError(f"{what}.{name}: the value must be 1-128 printable ASCII characters without spaces", {"path": f"{what}.{name}"})
    return dict(labels)


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[\x21-\x7e]*)?$")
_TRACESTATE = re.compile(r"^[\x20-\x7e]{0,512}$")


def trace_context(traceparent: Any, tracestate: Any) -> Optional[Dict[str, str]]:
    """REQUEST/SUBMIT `trace` (§4.3): a W3C traceparent (and tracestate), checked; None when neither is given."""
    from .errors import ValidationError

    if traceparent is None and tracestate is None:
        return None
    if (
        not isinstance(traceparent, str)
        or len(traceparent) > 256
        or not _TRACEPARENT.match(traceparent)
        or traceparent.startswith("ff")
        or traceparent[3:35] == "0" * 32
        or traceparent[36:52] == "0" * 16
    ):
        raise ValidationError("traceparent must be a W3C traceparent, e.g. 00-<32 hex>-<16 hex>-01 (ids not all zeros)", {"path": "traceparent"})
    trace = {"traceparent": traceparent}
    if tracestate is not None:
        if not isinstance(tracestate, str) or not _TRACESTATE.match(tracestate):
            raise ValidationError("tracestate must be printable ASCII, at most 512 characters", {"path": "tracestate"})
        trace["tracestate"] = tracestate
    return trace
