"""Compressing binary frames before they are sent (PROTOCOL.md §5.2). Pure: no sockets.

The choice follows the TypeScript peers: off unless asked; asked, a frame goes as it is when it
is under 1 KiB, starts with the magic number of an already compressed format, or would not get
smaller; `force` compresses every frame. Inflating what arrives is protocol.inflate.
"""

from __future__ import annotations

import zlib
from typing import Any, List, NamedTuple, Optional

from .errors import ValidationError
from .protocol import Encoded, Frame, zstd_module

MIN_BYTES = 1024
# Formats that are compressed already (gzip, zstd, zip, bzip2, xz, 7z, lz4, rar, PNG, JPEG, GIF, WebM/MKV, Ogg, FLAC, MP3 with ID3).
_MAGIC = (
    b"\x1f\x8b",
    b"\x28\xb5\x2f\xfd",
    b"PK\x03\x04",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"\x04\x22\x4d\x18",
    b"Rar!",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\x1a\x45\xdf\xa3",
    b"OggS",
    b"fLaC",
    b"ID3",
)


class Compression(NamedTuple):
    codec: str  # "gzip" or "zstd"
    force: bool
    level: Optional[int]


def check_compress(option: Any, path: str = "compress") -> Optional[Compression]:
    """`compress=` as given ("gzip", "zstd", or {"codec", "force"?, "level"?}), checked; None when off."""
    if option is None or option is False:
        return None
    if isinstance(option, str):
        option = {"codec": option}
    if not isinstance(option, dict) or set(option) - {"codec", "force", "level"}:
        raise ValidationError(f'{path} must be "gzip", "zstd" or {{"codec", "force", "level"}}', {"path": path})
    codec, force, level = option.get("codec"), option.get("force", False), option.get("level")
    if codec not in ("gzip", "zstd"):
        raise ValidationError(f'{path}: the codec must be "gzip" or "zstd", not {str(codec)[:40]!r}', {"path": f"{path}.codec"})
    if codec == "zstd" and zstd_module() is None:
        raise ValidationError(f"{path}: zstd needs Python 3.14's compression.zstd or the zstandard package; gzip works everywhere", {"path": f"{path}.codec"})
    if not isinstance(force, bool):
        raise ValidationError(f"{path}: force must be true or false", {"path": f"{path}.force"})
    low, high = (1, 9) if codec == "gzip" else (-7, 22)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high):
        raise ValidationError(f"{path}: a {codec} level is a whole number from {low} to {high}", {"path": f"{path}.level"})
    return Compression(codec, force, level)


def compress_value(encoded: Encoded, compression: Optional[Compression]) -> Encoded:
    """`encoded` with its binary frames compressed as `compression` says (their slots gain `compression` and `size`)."""
    if compression is None or not encoded.frames:
        return encoded
    slots: List[Any] = []
    frames: List[Frame] = []
    for slot, frame in zip(encoded.slots, encoded.frames):
        view = memoryview(frame).cast("B") if isinstance(frame, memoryview) else memoryview(frame)
        packed = _worth_compressing(view, compression)
        if packed is None:
            slots.append(slot)
            frames.append(frame)
        else:
            slots.append({**slot, "compression": compression.codec, "size": view.nbytes})
            frames.append(packed)
    return Encoded(encoded.json, slots, frames)


def _worth_compressing(view: memoryview, compression: Compression) -> Optional[bytes]:
    if not compression.force and (view.nbytes < MIN_BYTES or bytes(view[:8]).startswith(_MAGIC) or _is_media(view)):
        return None
    packed = _compress(view, compression)
    if not compression.force and len(packed) >= view.nbytes:
        return None
    return packed


def _is_media(view: memoryview) -> bool:
    head = bytes(view[:12])
    return head[4:8] == b"ftyp" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _compress(view: memoryview, compression: Compression) -> bytes:
    if compression.codec == "gzip":
        packer = zlib.compressobj(compression.level if compression.level is not None else 6, zlib.DEFLATED, 31)
        return packer.compress(view) + packer.flush()
    module = zstd_module()
    assert module is not None  # check_compress made sure
    level = compression.level if compression.level is not None else 3
    if module.__name__ == "compression.zstd":
        return module.compress(bytes(view), level=level)
    return module.ZstdCompressor(level=level).compress(view)
