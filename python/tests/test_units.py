"""The package's pure parts, without sockets: message frames, binary values, options, errors, method marks, CLI flags."""

import json
import os

import pytest

import voidrail
from voidrail import cli
from voidrail.errors import ERROR_CLASSES, error_from_wire, error_to_wire
from voidrail.protocol import decode_message, decode_value, encode_message, encode_value, payload_value
from voidrail.service import collect_methods
from voidrail.task_options import task_options


def test_a_message_is_vrp1_kind_header_payload_and_binary_frames():
    frames = encode_message("REQUEST", {"id": 7, "method": "S.m"}, encode_value([1, b"ab", {"k": memoryview(b"\x00\x00\x80?").cast("f")}]))
    assert frames[:2] == [b"VRP1", b"REQUEST"]
    header = json.loads(frames[2])
    assert header == {
        "id": 7,
        "method": "S.m",
        "binary": [{"path": [1], "type": "Uint8Array"}, {"path": [2, "k"], "type": "Float32Array"}],
    }
    assert frames[3] == b'[1,null,{"k":null}]'
    assert bytes(frames[4]) == b"ab" and bytes(frames[5]) == b"\x00\x00\x80?"
    message = decode_message([bytes(frame) for frame in frames])
    assert payload_value(message, "args") == [1, b"ab", {"k": b"\x00\x00\x80?"}]


def test_plain_json_has_no_binary_entry_and_the_root_may_be_binary():
    assert encode_value({"a": [1, "x"]}) == (b'{"a":[1,"x"]}', [], [])
    whole = encode_value(b"raw")
    assert whole.slots == [{"path": [], "type": "Uint8Array"}] and whole.json == b"null"
    assert decode_value(b"null", whole.slots, [b"raw"]) == b"raw"


def test_values_json_cannot_hold_are_refused():
    for value in (float("nan"), float("inf"), object(), {1j: 2}):
        with pytest.raises((TypeError, ValueError)):
            encode_value(value)


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([b"VRP1", b"RESULT"], "FRAME_COUNT"),
        ([b"VRP2", b"RESULT", b"{}", b"1"], "PROTOCOL_ID"),
        ([b"VRP1", b"RESULT", b"{nope", b"1"], "BAD_JSON"),
        ([b"VRP1", b"RESULT", b"[1]", b"1"], "NOT_OBJECT"),
        ([b"VRP1", b"RESULT", b'{"id":1}'], "FRAME_COUNT"),
        ([b"VRP1", b"END", b'{"id":1}', b"extra"], "FRAME_COUNT"),
        ([b"VRP1", b"RESULT", b'{"id":1,"binary":[{"path":[],"type":"Uint8Array"}]}', b"null"], "FRAME_COUNT"),
    ],
)
def test_bad_messages_are_protocol_errors_with_their_reason(frames, reason):
    with pytest.raises(voidrail.ProtocolError) as raised:
        decode_message(frames)
    assert raised.value.data["reason"] == reason


@pytest.mark.parametrize(
    "payload, slots, frames",
    [
        (b"[1]", [{"path": [0], "type": "Uint8Array"}], [b"x"]),  # not a null there
        (b"[null]", [{"path": [5], "type": "Uint8Array"}], [b"x"]),  # no such index
        (b"[null]", [{"path": ["k"], "type": "Uint8Array"}], [b"x"]),  # a key into an array
        (b"[null]", [{"path": [0], "type": "Complex128Array"}], [b"x"]),  # unknown type
        (b"[null]", [{"path": [0], "type": "Float32Array"}], [b"xyz"]),  # not whole elements
        (b"[null]", [{"path": [0], "type": "Uint8Array"}], []),  # a frame missing
        (b"\xff", None, []),  # not UTF-8
    ],
)
def test_binary_entries_that_do_not_fit_are_refused(payload, slots, frames):
    with pytest.raises(voidrail.ProtocolError):
        decode_value(payload, slots, frames)


def test_errors_round_trip_by_code_and_unknown_codes_stay_generic():
    for code, cls in ERROR_CLASSES.items():
        rebuilt = error_from_wire({"code": code, "message": "m", "data": {"x": 1}})
        assert type(rebuilt) is cls and rebuilt.code == code and rebuilt.data == {"x": 1}
    custom = error_from_wire({"code": "OUT_OF_STOCK", "message": "none left"})
    assert type(custom) is voidrail.VoidRailError and custom.code == "OUT_OF_STOCK"
    assert isinstance(voidrail.TimeoutError("t"), TimeoutError)
    assert isinstance(voidrail.ConnectionLostError("c"), ConnectionError)
    assert voidrail.CallTimeoutError is voidrail.TimeoutError


def test_an_exception_goes_on_the_wire_as_REMOTE_ERROR_with_its_name_and_stack():
    try:
        raise KeyError("missing")
    except KeyError as error:
        wire = error_to_wire(error)
    assert wire["code"] == "REMOTE_ERROR" and wire["data"]["name"] == "KeyError"
    assert "Traceback" in wire["data"]["stack"]
    assert error_to_wire(voidrail.ValidationError("bad", {"path": "args.0"})) == {"code": "VALIDATION_ERROR", "message": "bad", "data": {"path": "args.0"}}
    assert error_to_wire(voidrail.VoidRailError("big", {"blob": "x" * 20000}, code="HUGE"))["data"] == {"truncated": True}


def test_task_options_are_seconds_here_and_milliseconds_on_the_wire():
    assert task_options(priority=7, countdown=1.5, expires=60, time_limit=2, retries=3, retry_delay=0.25, backoff="exponential", retry_on="TIMEOUT") == {
        "priority": 7,
        "countdownMs": 1500,
        "expiresMs": 60000,
        "timeLimitMs": 2000,
        "retries": 3,
        "retryDelayMs": 250,
        "backoff": "exponential",
        "retryOn": ["TIMEOUT"],
    }
    assert task_options(eta="2030-01-01T00:00:00Z") == {"etaMs": 1893456000000}
    for bad in ({"priority": 10}, {"countdown": -1}, {"countdown": 1, "eta": 5}, {"backoff": "linear"}, {"retries": True}):
        with pytest.raises(voidrail.ValidationError):
            task_options(**bad)


def test_service_method_kinds_come_from_the_function():
    class Kinds(voidrail.ServiceDealer):
        @voidrail.service_method
        def plain(self, a, b=1):
            return a

        @voidrail.service_method(description="d", context=True)
        async def coroutine(self, a, context):
            return a

        @voidrail.service_method(name="renamed")
        def generator(self):
            yield 1

        @voidrail.service_method
        async def async_generator(self):
            yield 1

        def not_marked(self):
            pass

    methods = collect_methods(Kinds("tcp://127.0.0.1:1"))
    assert {name: (spec.kind, spec.stream) for name, (spec, _, _) in methods.items()} == {
        "plain": ("sync", False),
        "coroutine": ("async", False),
        "renamed": ("generator", True),
        "async_generator": ("async_generator", True),
    }
    _, _, signature = methods["coroutine"]
    assert list(signature.parameters) == ["a"]  # context is not an argument a caller sends
    with pytest.raises(voidrail.ValidationError):

        class Empty(voidrail.ServiceDealer):
            pass

        Empty("tcp://127.0.0.1:1")
    with pytest.raises(voidrail.ValidationError):
        Kinds("http://nope")
    with pytest.raises(voidrail.ValidationError):
        Kinds("tcp://127.0.0.1:1", max_concurrent=0)


def test_the_router_endpoint_follows_the_voidrail_command(monkeypatch):
    for name in ("VOIDRAIL_ROUTER_ADDRESS", "VOIDRAIL_HOST", "VOIDRAIL_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert cli.endpoint(None, None, None) == "tcp://127.0.0.1:5555"
    monkeypatch.setenv("VOIDRAIL_HOST", "10.0.0.2")
    monkeypatch.setenv("VOIDRAIL_PORT", "6000")
    assert cli.endpoint(None, None, None) == "tcp://10.0.0.2:6000"
    monkeypatch.setenv("VOIDRAIL_ROUTER_ADDRESS", "ipc:///tmp/vr.sock")
    assert cli.endpoint(None, None, None) == "ipc:///tmp/vr.sock"
    assert cli.endpoint("h", None, None) == "tcp://h:6000"  # a flag beats the environment's address
    assert cli.endpoint(None, "7000", "tcp://a:1") == "tcp://a:1"
    assert cli.endpoint("::1", "7000", None) == "tcp://[::1]:7000"
    for host, port, address in (("bad host", None, None), (None, "0", None), (None, "70000", None), (None, None, "http://x")):
        with pytest.raises(cli.UsageError):
            cli.endpoint(host, port, address)


def test_the_client_takes_its_defaults_from_the_environment(monkeypatch):
    monkeypatch.setenv("VOIDRAIL_ROUTER_ADDRESS", "tcp://router.example:5600")
    monkeypatch.setenv("VOIDRAIL_API_KEY", "client_from-env")
    client = voidrail.AsyncClient()
    assert (client.router_address, client.api_key) == ("tcp://router.example:5600", "client_from-env")
    with pytest.raises(voidrail.ValidationError):
        voidrail.AsyncClient("tcp://x:1", api_key="has space")
    with pytest.raises(voidrail.ValidationError):
        voidrail.AsyncClient("tcp://x:1", timeout=0)
    monkeypatch.delenv("VOIDRAIL_API_KEY")
    assert os.environ.get("VOIDRAIL_API_KEY") is None


def _compressible(size):
    return bytes((i >> 6) % 251 for i in range(size))


def test_compressed_binary_frames_are_inflated_gzip_with_zlib_zstd_with_a_module_or_a_clear_error(monkeypatch):
    import gzip

    from voidrail import protocol

    data = _compressible(100_000)
    slot = {"path": ["x"], "type": "Uint8Array", "compression": "gzip", "size": len(data)}
    assert decode_value(b'{"x":null}', [slot], [gzip.compress(data)]) == {"x": data}
    # A typed array's whole-element check applies to the inflated bytes.
    floats = {"path": [], "type": "Float32Array", "compression": "gzip", "size": 8}
    assert decode_value(b"null", [floats], [gzip.compress(b"\x00" * 8)]) == b"\x00" * 8
    for bad, reason in (
        ({**slot, "size": len(data) - 1}, "BAD_COMPRESSION"),  # inflates to more than it says: stopped at size + 1
        ({**slot, "size": len(data) + 1}, "BAD_COMPRESSION"),
        ({k: v for k, v in slot.items() if k != "size"}, "SCHEMA"),
        ({**slot, "compression": "lz4"}, "SCHEMA"),
        ({**slot, "size": -1}, "SCHEMA"),
        ({**slot, "size": 2**31}, "SCHEMA"),
    ):
        with pytest.raises(voidrail.ProtocolError) as failed:
            decode_value(b'{"x":null}', [bad], [gzip.compress(data)])
        assert failed.value.data["reason"] == reason, bad
    with pytest.raises(voidrail.ProtocolError) as garbage:
        decode_value(b'{"x":null}', [slot], [b"not gzip at all"])
    assert garbage.value.data == {"reason": "BAD_COMPRESSION", "codec": "gzip"}

    zstd = protocol.zstd_module()
    assert zstd is not None, "python3-zstandard (or Python 3.14's compression.zstd) is needed for these tests; .ci/run installs it"
    compressed = zstd.ZstdCompressor().compress(data) if hasattr(zstd, "ZstdCompressor") else zstd.compress(data)
    zslot = {**slot, "compression": "zstd"}
    assert decode_value(b'{"x":null}', [zslot], [compressed]) == {"x": data}
    with pytest.raises(voidrail.ProtocolError) as short:
        decode_value(b'{"x":null}', [{**zslot, "size": 10}], [compressed])
    assert short.value.data["reason"] == "BAD_COMPRESSION"
    # Without a zstd module the error names the codec and what would provide it.
    monkeypatch.setattr(protocol, "zstd_module", lambda: None)
    with pytest.raises(voidrail.ProtocolError) as missing:
        decode_value(b'{"x":null}', [zslot], [compressed])
    assert missing.value.data == {"reason": "UNSUPPORTED_COMPRESSION", "codec": "zstd"}
    assert "zstd" in missing.value.message and "compression.zstd" in missing.value.message


def test_tags_and_require_are_checked(monkeypatch):
    from voidrail.protocol import check_labels

    assert check_labels({"gpu": "h200", "region.zone": "eu-1"}, "require") == {"gpu": "h200", "region.zone": "eu-1"}
    for bad, path in (({"gpu": "a b"}, "require.gpu"), ({"9x": "a"}, "require.9x"), ({"gpu": 1}, "require.gpu"), ("gpu", "require")):
        with pytest.raises(voidrail.ValidationError) as failed:
            check_labels(bad, "require")
        assert failed.value.data["path"] == path
    with pytest.raises(voidrail.ValidationError):
        check_labels({f"t{i}": "x" for i in range(33)}, "tags")
    assert cli.tags_flag(["gpu=h200", "region=eu,zone=a"]) == {"gpu": "h200", "region": "eu", "zone": "a"}
    with pytest.raises(cli.UsageError):
        cli.tags_flag(["gpu"])


def test_what_compress_compresses():
    import gzip as gzip_module

    from voidrail.compress import check_compress, compress_value

    data = _compressible(50_000)
    png = b"\x89PNG\r\n\x1a\n" + bytes(5000)
    encoded = encode_value([data, b"tiny", png, memoryview(bytes(4000)).cast("f")])
    packed = compress_value(encoded, check_compress("gzip"))
    assert [slot.get("compression") for slot in packed.slots] == ["gzip", None, None, "gzip"]
    assert packed.slots[0]["size"] == len(data) and packed.slots[3] == {"path": [3], "type": "Float32Array", "compression": "gzip", "size": 4000}
    assert gzip_module.decompress(packed.frames[0]) == data
    assert decode_value(packed.json, packed.slots, packed.frames) == [data, b"tiny", png, bytes(4000)]
    forced = compress_value(encoded, check_compress({"codec": "zstd", "force": True}))
    assert [slot.get("compression") for slot in forced.slots] == ["zstd"] * 4
    assert decode_value(forced.json, forced.slots, forced.frames) == [data, b"tiny", png, bytes(4000)]
    assert compress_value(encoded, None) is encoded
    for bad, path in (("lz4", "compress.codec"), ({"codec": "gzip", "level": 12}, "compress.level"), ({"codec": "gzip", "force": 1}, "compress.force"), (3, "compress")):
        with pytest.raises(voidrail.ValidationError) as failed:
            check_compress(bad)
        assert failed.value.data["path"] == path
