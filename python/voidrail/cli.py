"""`python -m voidrail dealer`: runs the ServiceDealer classes of a module, in this process or as N supervised processes each.

Takes the connection flags and environment variables of the `voidrail` command: --address, else
--host/--port, else VOIDRAIL_ROUTER_ADDRESS, else VOIDRAIL_HOST/VOIDRAIL_PORT, else
tcp://127.0.0.1:5555; --api-key or VOIDRAIL_API_KEY; --instances or VOIDRAIL_INSTANCES;
--log-level or VOIDRAIL_LOG_LEVEL; --curve-server-key or VOIDRAIL_CURVE_SERVER_KEY, --curve-secret-key-file
or VOIDRAIL_CURVE_SECRET_KEY; --tag NAME=VALUE. Exit status: 0 after a drain (SIGTERM, SIGINT), 2 on a usage
error, 78 when a service cannot start (bad key, no router within --start-timeout, a bad module).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import importlib.util
import inspect
import logging
import os
import re
import signal
import subprocess
import sys
import time
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Type

from .dealer import ServiceDealer
from .errors import VoidRailError

EXIT_USAGE = 2
EXIT_CANNOT_START = 78
LEVELS = {"silent": logging.CRITICAL + 10, "error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
# A child that dies sooner than this after its start is restarted after a growing pause (1 s doubling to 30 s).
QUICK_DEATH_S = 5.0

log = logging.getLogger("voidrail")


class UsageError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m voidrail", description="VoidRail for Python")
    commands = root.add_subparsers(dest="command", required=True)
    dealer = commands.add_parser("dealer", help="Load ServiceDealer classes from a module and run them (N instances each) against a router")
    dealer.add_argument("--module", required=True, help="a dotted module (my_service, myapp.services) or a .py file")
    dealer.add_argument("--class", dest="classes", action="append", default=[], help="Service class to start (repeatable; default: every ServiceDealer subclass the module defines)")
    dealer.add_argument("--instances", default=os.environ.get("VOIDRAIL_INSTANCES") or "1", help="Processes per class (env VOIDRAIL_INSTANCES)")
    dealer.add_argument("--max-concurrent", help="Calls one instance runs at once (default: the router decides: 1 in fifo, 100 in load_balance)")
    dealer.add_argument("--start-timeout", default="30", help="Seconds to wait for the router before giving up")
    dealer.add_argument("--host", help="Router host (default 127.0.0.1, env VOIDRAIL_HOST)")
    dealer.add_argument("--port", help="Router port (default 5555, env VOIDRAIL_PORT)")
    dealer.add_argument("--address", help="Full router endpoint, e.g. ipc:///tmp/vr.sock; overrides --host/--port (env VOIDRAIL_ROUTER_ADDRESS)")
    dealer.add_argument("--api-key", help="API key (env VOIDRAIL_API_KEY)")
    dealer.add_argument("--curve-server-key", help="The router's CURVE public key (40 Z85 characters): encrypt the connection (env VOIDRAIL_CURVE_SERVER_KEY)")
    dealer.add_argument("--curve-secret-key-file", help="File holding this dealer's CURVE secret key (its public key is its identity; env VOIDRAIL_CURVE_SECRET_KEY)")
    dealer.add_argument("--tag", dest="tags", action="append", default=[], help="A tag requests can require, NAME=VALUE (repeatable), e.g. --tag gpu=h200")
    dealer.add_argument("--log-level", help="silent, error, warn, info or debug (env VOIDRAIL_LOG_LEVEL)")
    return root


def endpoint(host: Optional[str], port: Optional[str], address: Optional[str]) -> str:
    """As `voidrail`: --address, then --host/--port, then VOIDRAIL_ROUTER_ADDRESS, then VOIDRAIL_HOST/VOIDRAIL_PORT."""
    given = host is not None or port is not None
    chosen = address or (None if given else os.environ.get("VOIDRAIL_ROUTER_ADDRESS") or None)
    if chosen:
        if not re.match(r"^(tcp|ipc)://.+", chosen):
            raise UsageError(f'--address must look like tcp://host:port or ipc:///path, got "{chosen}"')
        return chosen
    port_number = whole_number(port if port is not None else os.environ.get("VOIDRAIL_PORT") or "5555", "--port", 65535)
    host_name = host if host is not None else os.environ.get("VOIDRAIL_HOST") or "127.0.0.1"
    if not re.match(r"^[A-Za-z0-9.:*_-]+$", host_name):
        raise UsageError(f'--host "{host_name}" is not a host name or address')
    return f"tcp://{'[' + host_name + ']' if ':' in host_name else host_name}:{port_number}"


def whole_number(text: str, flag: str, maximum: int) -> int:
    if not re.match(r"^\d+$", text.strip()):
        raise UsageError(f'{flag} must be a whole number, got "{text}"')
    value = int(text)
    if not 1 <= value <= maximum:
        raise UsageError(f"{flag} must be between 1 and {maximum}, got {value}")
    return value


def seconds(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0 or value == float("inf"):
        raise UsageError(f'{flag} must be a number of seconds, got "{text}"')
    return value


Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")


def curve_server_key_flag(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    key = value.strip()
    if not Z85_KEY.match(key):
        raise UsageError(f'--curve-server-key must be a CURVE public key of 40 Z85 characters, got "{value}"')
    return key


def read_curve_secret_key_file(path: str) -> str:
    """The 40-character Z85 key on a line of its own (what `voidrail router --generate-keys` writes), or a pyzmq/libzmq
    certificate's `secret-key = "..."` line, as `voidrail dealer` reads it."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read --curve-secret-key-file {path}: {getattr(error, 'strerror', None) or error}") from None
    certificate = re.search(r'secret-key\s*=\s*"([^"]{40})"', text)
    candidates = [certificate.group(1)] if certificate else [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    keys = [line for line in candidates if Z85_KEY.match(line)]
    if not keys or (not certificate and len(candidates) != 1):
        raise UsageError(f"--curve-secret-key-file {path} does not hold one CURVE secret key (40 Z85 characters on a line of its own)")
    return keys[0]


TAG = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]{0,63})=([\x21-\x7e]{1,128})$")


def tags_flag(values: Sequence[str]) -> Optional[Dict[str, str]]:
    """--tag NAME=VALUE, repeatable (or comma-separated), as HELLO.tags (PROTOCOL.md §4.1)."""
    tags: Dict[str, str] = {}
    for value in (part.strip() for item in values for part in item.split(",")):
        match = TAG.match(value)
        if not match:
            raise UsageError(f'--tag takes NAME=VALUE (a name of letters, digits, _ . -; a value without spaces), got "{value}"')
        tags[match.group(1)] = match.group(2)
    if len(tags) > 32:
        raise UsageError(f"at most 32 tags, got {len(tags)}")
    return tags or None


def load_module(name: str) -> ModuleType:
    """A dotted module from sys.path (the current directory included), or a .py file."""
    if name.endswith(".py") or os.sep in name:
        path = os.path.abspath(name)
        if not os.path.isfile(path):
            raise UsageError(f"--module {name}: no such file")
        sys.path.insert(0, os.path.dirname(path))
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise UsageError(f"--module {name}: no such module (looked in {os.getcwd()} and sys.path)") from None
        raise


def service_classes(module: ModuleType, wanted: Sequence[str]) -> List[Type[ServiceDealer]]:
    """The ServiceDealer subclasses `module` defines (not those it imports), or the ones `wanted` names."""
    found = {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, ServiceDealer) and value is not ServiceDealer
    }
    if wanted:
        missing = [name for name in wanted if name not in found]
        if missing:
            raise UsageError(f"--class {', '.join(missing)}: not a ServiceDealer class of {module.__name__} (it has: {', '.join(sorted(found)) or 'none'})")
        return [found[name] for name in wanted]
    own = [cls for cls in found.values() if cls.__module__ == module.__name__]
    if not own:
        raise UsageError(f"{module.__name__} defines no ServiceDealer subclass")
    return own


def configure_logging(level: Optional[str]) -> None:
    chosen = (level or os.environ.get("VOIDRAIL_LOG_LEVEL") or "info").lower()
    if chosen == "trace":
        chosen = "debug"
    if chosen not in LEVELS:
        raise UsageError(f'--log-level must be silent, error, warn, info or debug, got "{chosen}"')
    logging.basicConfig(level=LEVELS[chosen], format=f"voidrail[{os.getpid()}] %(levelname)s %(message)s", stream=sys.stderr)


async def run_in_process(classes: List[Type[ServiceDealer]], address: str, api_key: Optional[str], max_concurrent: Optional[int], start_timeout: float, **options: Any) -> int:
    """Every class once, in this process; drains all on SIGTERM/SIGINT. `options`: CURVE keys and tags for each dealer."""
    dealers = [cls(address, api_key=api_key, max_concurrent=max_concurrent, start_timeout=start_timeout, **options) for cls in classes]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(130)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    starting: "asyncio.Future[Any]" = asyncio.ensure_future(asyncio.gather(*(dealer.start() for dealer in dealers)))
    stopping: "asyncio.Future[Any]" = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        # A signal while waiting for the router: give up the start, there is nothing to drain.
        starting.cancel()
        await asyncio.gather(*(dealer.stop() for dealer in dealers), return_exceptions=True)
        return 0
    try:
        starting.result()
    except VoidRailError as error:
        stopping.cancel()
        log.error("%s", error.message)
        await asyncio.gather(*(dealer.stop() for dealer in dealers), return_exceptions=True)
        return EXIT_CANNOT_START
    # Drained at the router (voidrail client --drain, the dashboard), every service left: the process ends, 0.
    drained = asyncio.ensure_future(asyncio.gather(*(dealer.drained_by_router.wait() for dealer in dealers if dealer.drained_by_router)))
    await asyncio.wait([stopping, drained], return_when=asyncio.FIRST_COMPLETED)
    by_router = drained.done() and not stopping.done()
    stopping.cancel()
    drained.cancel()
    await asyncio.gather(*(dealer.stop() for dealer in dealers))
    log.info("drained by the router; dealer shutdown complete" if by_router else "dealer shutdown complete")
    return 0


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM when the supervisor dies (Linux prctl PR_SET_PDEATHSIG), so no instance is orphaned."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def supervise(args: argparse.Namespace, classes: List[Type[ServiceDealer]], instances: int, address: str, curve: Dict[str, Optional[str]]) -> int:
    """N processes per class; restarts one that dies (a crash, SIGKILL); SIGTERM/SIGINT drain them all, a second kills them."""
    base = [sys.executable, "-m", "voidrail", "dealer", "--module", args.module, "--instances", "1", "--address", address, "--start-timeout", args.start_timeout]
    if args.max_concurrent:
        base += ["--max-concurrent", args.max_concurrent]
    if args.log_level:
        base += ["--log-level", args.log_level]
    for tag in args.tags:
        base += ["--tag", tag]
    env = dict(os.environ)
    if args.api_key:
        env["VOIDRAIL_API_KEY"] = args.api_key  # not on the command line, where ps shows it
    # Keys go to the children in their environment: a secret on a command line shows in ps.
    if curve["curve_server_key"]:
        env["VOIDRAIL_CURVE_SERVER_KEY"] = curve["curve_server_key"]
    if curve["curve_secret_key"]:
        env["VOIDRAIL_CURVE_SECRET_KEY"] = curve["curve_secret_key"]
    module_dir = os.path.dirname(os.path.abspath(args.module)) if args.module.endswith(".py") else os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [module_dir, env.get("PYTHONPATH")]))
    slots: Dict[int, dict] = {}
    for cls in classes:
        for index in range(instances):
            slots[len(slots)] = {"command": base + ["--class", cls.__name__], "name": f"{cls.__name__}#{index + 1}", "pause": 1.0}

    def start(slot: dict) -> None:
        slot["process"] = subprocess.Popen(slot["command"], env=env, preexec_fn=_die_with_parent)
        slot["started"] = time.monotonic()
        log.info("started %s (pid %d)", slot["name"], slot["process"].pid)

    stopping = False
    signals = 0

    def on_signal(number: int, _frame: object) -> None:
        nonlocal stopping, signals
        signals += 1
        stopping = True
        for slot in slots.values():
            process = slot.get("process")
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL if signals > 1 else signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for slot in slots.values():
        start(slot)
    status = 0
    while True:
        alive = 0
        for slot in slots.values():
            process = slot.get("process")
            if process is None:
                if stopping or slot.get("restart_at") == float("inf"):
                    continue
                if time.monotonic() >= slot.get("restart_at", 0):
                    start(slot)
                alive += 1  # running again, or waiting out its pause before the restart
                continue
            code = process.poll()
            if code is None:
                alive += 1
                continue
            slot["process"] = None
            if stopping:
                continue
            if code == 0:
                # Only a drain ends a child with 0: an operator's at the router (a signal would have reached us too).
                log.info("%s (pid %d) was drained and exited; not restarting it", slot["name"], process.pid)
                slot["restart_at"] = float("inf")
                continue
            if code in (EXIT_USAGE, EXIT_CANNOT_START):
                log.error("%s cannot start (exit %d); not restarting it", slot["name"], code)
                status = code
                slot["restart_at"] = float("inf")
                continue
            quick = time.monotonic() - slot["started"] < QUICK_DEATH_S
            slot["pause"] = min(30.0, slot["pause"] * 2) if quick else 1.0
            slot["restart_at"] = time.monotonic() + (slot["pause"] if quick else 0.1)
            log.warning("%s (pid %d) exited with %s; restarting it", slot["name"], process.pid, code if code >= 0 else signal.Signals(-code).name)
            alive += 1
        if alive == 0:
            if stopping:
                log.info("dealer shutdown complete")
                return 130 if signals > 1 else 0
            return status  # every child drained (0), or the status of one that could not start
        time.sleep(0.05)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        configure_logging(args.log_level)
        address = endpoint(args.host, args.port, args.address)
        instances = whole_number(args.instances, "--instances", 256)
        max_concurrent = whole_number(args.max_concurrent, "--max-concurrent", 65535) if args.max_concurrent else None
        start_timeout = seconds(args.start_timeout, "--start-timeout")
        api_key = args.api_key or os.environ.get("VOIDRAIL_API_KEY") or None
        curve_server_key = curve_server_key_flag(args.curve_server_key)
        curve_secret_key = read_curve_secret_key_file(args.curve_secret_key_file) if args.curve_secret_key_file else None
        if curve_secret_key is not None and curve_server_key is None and not os.environ.get("VOIDRAIL_CURVE_SERVER_KEY"):
            raise UsageError("--curve-secret-key-file needs --curve-server-key (the router's CURVE public key)")
        curve = {"curve_server_key": curve_server_key, "curve_secret_key": curve_secret_key}
        tags = tags_flag(args.tags)
        try:
            classes = service_classes(load_module(args.module), args.classes)
        except UsageError:
            raise
        except Exception as error:  # noqa: BLE001 - a module that fails to import cannot start
            print(f"python -m voidrail: --module {args.module} failed to load: {type(error).__name__}: {error}", file=sys.stderr)
            return EXIT_CANNOT_START
    except UsageError as error:
        print(f"python -m voidrail: {error}", file=sys.stderr)
        return EXIT_USAGE
    if instances > 1:
        return supervise(args, classes, instances, address, curve)
    try:
        return asyncio.run(run_in_process(classes, address, api_key, max_concurrent, start_timeout, tags=tags, **curve))
    except VoidRailError as error:
        print(f"python -m voidrail: {error}", file=sys.stderr)
        return EXIT_CANNOT_START
