#!/usr/bin/env python3
"""A command-line VoidRail client, a thin example on the Python package (python/voidrail).

It runs the actions its flags name, in order, with one voidrail.Client, or without any runs a
small demo against a router that serves EchoService; it prints one JSON line per result:

    /usr/bin/python3 examples/python/client.py tcp://127.0.0.1:5555 [--api-key KEY] [--timeout S]
        [--call METHOD [JSON_ARG ...]] [--call METHOD --args JSON] ... [--demo]
        [--submit METHOD [JSON_ARG ...] [--priority N --countdown S --retries N ...]]
        [--get-task ID] [--wait-task ID [--wait-timeout S]] [--watch-task ID]
        [--revoke-task ID] [--list-tasks [--state STATE --method METHOD --limit N]]

In a program, use the package itself (it is what this script calls):

    import voidrail  # noqa: F401 - found here, used below

    with voidrail.Client("tcp://127.0.0.1:5555", api_key=None, timeout=30) as client:
        client.invoke("EchoService.echo", "hi")                    # -> "hi"
        for n in client.stream("EchoService.streamNumbers", 0, 5):  # -> 0 1 2 3 4
            print(n)
        task = client.submit("EchoService.add", 2, 3, priority=7, retries=2)
        client.wait_task(task["id"], timeout=60)                    # -> 5

(asyncio code: voidrail.AsyncClient, the same methods awaited.) Task options are seconds here and
milliseconds on the wire. Against a router of revision 1 the task methods raise RevisionError
(UNSUPPORTED_REVISION) and send nothing.

A call's or submit's arguments are either JSON words after its method, or one `--args` after it
that reads as `voidrail client --args` does: a JSON array is the argument list, any other JSON
value the one argument. Options of an action follow it (--priority after its --submit). A task
ID may be `last`: the task the latest --submit of this run stored. `--submit` prints the task id
({"op": "submit", "method", "result": ID, "state"}), the task verbs print {"op", "task": ID,
"result"} (--watch-task one "event" line per event, then "end"). `--demo` runs the demo before
the actions. Each action's result or error ({"code", "message", "data", "class"}) is printed as a
JSON line (an error there is an outcome to report, not a failure of the script). Exit status: 0
on success, 1 on a VoidRail error of the connection (one line on stderr: "client.py: CODE:
message ..."), 2 on a usage or local error.

Needs pyzmq (Debian: apt-get install python3-zmq); the package is found in ../../python when it
is not installed (pip install ./python). A router to try it against:
    ./node_modules/.bin/bun test/fixtures/python-target.ts   (prints its address)
"""

import argparse
import json
import os
import sys

try:
    import zmq
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("client.py: pyzmq is not installed for this Python (Debian: apt-get install python3-zmq)")

try:
    import voidrail  # noqa: F401 - found here, used below
except ImportError:  # not installed: the package of this repository
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import voidrail  # noqa: F401 - found here, used below

from voidrail import CallTimeoutError, Client, ValidationError, VoidRailError  # noqa: E402,F401 - CallTimeoutError: the old name
from voidrail.task_options import TASK_STATES  # noqa: E402

VoidRailClient = Client  # the name this example's class had


# ---- the script ----------------------------------------------------------------------------------


def emit(record):
    print(json.dumps(record, separators=(",", ":")), flush=True)


def error_record(error):
    # "class" is the Python class the code was rebuilt as, so a reader sees both.
    return {"code": error.code, "message": error.message, "data": error.data, "class": type(error).__name__}


def demo(client):
    emit({"op": "invoke", "method": "EchoService.echo", "result": client.invoke("EchoService.echo", "Hello from Python")})
    emit({"op": "invoke", "method": "EchoService.add", "result": client.invoke("EchoService.add", 5, 3)})
    # A window of 2 makes the router see CREDIT messages even for 5 numbers.
    numbers = list(client.stream("EchoService.streamNumbers", 0, 5, window=2))
    emit({"op": "stream", "method": "EchoService.streamNumbers", "result": numbers})
    emit({"op": "discover_services", "result": client.discover_services()})
    emit({"op": "router_info", "result": client.get_router_info()})
    emit({"op": "queue_status", "result": client.get_queue_status()})


LAST = "last"  # as a task id on the command line: the task the latest --submit of this run stored
TASK_ID_FLAGS = {"--get-task": "get_task", "--wait-task": "wait_task", "--watch-task": "watch_task", "--revoke-task": "revoke_task"}


def _actions(namespace):
    if namespace.actions is None:
        namespace.actions = []
    return namespace.actions


class CallAction(argparse.Action):
    """--call / --submit METHOD [JSON_ARG ...]: one call or task, each argument a JSON word of its own."""

    def __call__(self, parser, namespace, values, option_string=None):
        method, *words = values
        try:
            args = [json.loads(word) for word in words]
        except ValueError as error:
            parser.error(f"{option_string} arguments must be JSON: {error}")
        op = "invoke" if option_string == "--call" else "submit"
        _actions(namespace).append({"op": op, "method": method, "args": args, "args_given": bool(words), "options": {}})


class ArgsAction(argparse.Action):
    """--args JSON, for the --call or --submit before it: an array is the argument list, any other value the one argument."""

    def __call__(self, parser, namespace, value, option_string=None):
        actions = _actions(namespace)
        if not actions or actions[-1]["op"] not in ("invoke", "submit"):
            parser.error("--args goes after the --call or --submit it is for")
        call = actions[-1]
        if call["args_given"]:
            parser.error(f"{call['method']} already has its arguments: give them after --call or with --args, not both")
        try:
            parsed = json.loads(value)
        except ValueError as error:
            parser.error(f"--args is not JSON ({error}): for a string use --args '\"text\"', two arguments --args '[5, 3]'")
        call["args"] = parsed if isinstance(parsed, list) else [parsed]
        call["args_given"] = True


class TaskAction(argparse.Action):
    """--get-task / --wait-task / --watch-task / --revoke-task ID (or `last`), and --list-tasks."""

    def __call__(self, parser, namespace, value, option_string=None):
        actions = _actions(namespace)
        if option_string == "--list-tasks":
            actions.append({"op": "list_tasks", "options": {}})
            return
        if value == LAST and not any(action["op"] == "submit" for action in actions):
            parser.error(f"{option_string} {LAST} needs a --submit before it")
        actions.append({"op": TASK_ID_FLAGS[option_string], "task_id": value, "options": {}})


class OptionAction(argparse.Action):
    """An option of the action before it (e.g. --priority for a --submit), stored under the method's keyword `key`."""

    def __init__(self, option_strings, dest, key, ops, append=False, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.key, self.ops, self.append = key, ops, append

    def __call__(self, parser, namespace, value, option_string=None):
        actions = _actions(namespace)
        if not actions or actions[-1]["op"] not in self.ops:
            flags = " or ".join({"submit": "--submit", "wait_task": "--wait-task", "revoke_task": "--revoke-task",
                                 "list_tasks": "--list-tasks"}[op] for op in self.ops)
            parser.error(f"{option_string} goes after the {flags} it is for")
        options = actions[-1]["options"]
        if self.nargs == 0:
            value = True
        if self.append:
            options.setdefault(self.key, []).append(value)
        elif self.key in options:
            parser.error(f"{option_string} is given twice for the same {actions[-1]['op']}")
        else:
            options[self.key] = value


def run_action(client, action, last_task):
    """Runs one command-line action, printing its records; returns the id `last` stands for after it."""
    op = action["op"]
    if op == "invoke":
        method = action["method"]
        try:
            emit({"op": op, "method": method, "result": client.invoke(method, *action["args"])})
        except VoidRailError as error:
            emit({"op": op, "method": method, "error": error_record(error)})
        return last_task
    if op == "submit":
        method = action["method"]
        try:
            task = client.submit(method, *action["args"], **action["options"])
        except VoidRailError as error:
            emit({"op": op, "method": method, "error": error_record(error)})
            return None  # a later `last` must not silently mean an older task
        emit({"op": op, "method": method, "result": task["id"], "state": task["state"]})
        return task["id"]
    if op == "list_tasks":
        try:
            emit({"op": op, "result": client.list_tasks(**action["options"])})
        except VoidRailError as error:
            emit({"op": op, "error": error_record(error)})
        return last_task
    task_id = action["task_id"]
    try:
        if task_id == LAST:
            if last_task is None:
                raise ValidationError(f"`{LAST}` names no task: the --submit before it failed", {"path": "taskId"})
            task_id = last_task
        if op == "watch_task":
            for event in client.watch_task(task_id):
                emit({"op": op, "task": task_id, "event": event})
            emit({"op": op, "task": task_id, "end": True})
        else:
            emit({"op": op, "task": task_id, "result": getattr(client, op)(task_id, **action["options"])})
    except VoidRailError as error:
        emit({"op": op, "task": task_id, "error": error_record(error)})
    return last_task


def main(argv=None):
    parser = argparse.ArgumentParser(description="VoidRail Python client: calls methods and runs background tasks through a router, or runs a demo.")
    parser.add_argument("address", help="router endpoint, e.g. tcp://127.0.0.1:5555 or ipc:///tmp/voidrail.sock")
    parser.add_argument("--api-key", help="client API key, when the router requires one")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per call (default 10)")
    parser.add_argument("--call", nargs="+", action=CallAction, dest="actions", default=None, metavar=("METHOD", "JSON_ARG"),
                        help="call METHOD (Service.method) and print its result or error; arguments as JSON words or --args")
    parser.add_argument("--args", action=ArgsAction, dest="actions", metavar="JSON",
                        help="arguments of the --call or --submit before it, as voidrail client takes them: '[5, 3]' is two, '\"hi\"' one")
    parser.add_argument("--demo", action="store_true",
                        help="run the demo (needs EchoService) before the other actions; the default when none is given")

    tasks = parser.add_argument_group("background tasks (router revision 2); ID may be `last`, the task the latest --submit stored")
    tasks.add_argument("--submit", nargs="+", action=CallAction, dest="actions", metavar=("METHOD", "JSON_ARG"),
                       help="submit METHOD as a task and print its id; arguments as JSON words or --args; options below follow it")
    for flag, key, kind, metavar, what in (
            ("--priority", "priority", int, "N", "0..9, higher first (default 5)"),
            ("--countdown", "countdown", float, "SECONDS", "seconds before it may start"),
            ("--eta", "eta", str, "TIME", "when it may start, ISO 8601"),
            ("--expires", "expires", float, "SECONDS", "seconds after submit: not started by then, it ends expired"),
            ("--time-limit", "time_limit", float, "SECONDS", "seconds per attempt"),
            ("--retries", "retries", int, "N", "further attempts after a failure"),
            ("--retry-delay", "retry_delay", float, "SECONDS", "seconds before a retry"),
            ("--idempotency-key", "idempotency_key", str, "KEY", "the same key gives the same task")):
        tasks.add_argument(flag, action=OptionAction, dest="actions", key=key, ops=("submit",), type=kind, metavar=metavar,
                           help=f"of --submit: {what}")
    tasks.add_argument("--backoff", action=OptionAction, dest="actions", key="backoff", ops=("submit",),
                       choices=("fixed", "exponential"), help="of --submit: how retry delays grow")
    tasks.add_argument("--retry-on", action=OptionAction, dest="actions", key="retry_on", ops=("submit",), append=True,
                       metavar="CODE", help="of --submit: an error code or name that is retried (repeat for more)")
    tasks.add_argument("--wait-for-dealer", action=OptionAction, dest="actions", key="wait_for_dealer", ops=("submit",), nargs=0,
                       help="of --submit: store it even if no dealer offers the method now")
    for flag, what in (("--get-task", "print the task: state, progress, result or error, attempts, times"),
                       ("--wait-task", "wait until the task is final; print its result or error"),
                       ("--watch-task", "print the task's events as they happen, up to its final state"),
                       ("--revoke-task", "revoke the task; print it")):
        tasks.add_argument(flag, action=TaskAction, dest="actions", metavar="ID", help=what)
    tasks.add_argument("--wait-timeout", action=OptionAction, dest="actions", key="timeout", ops=("wait_task",), type=float,
                       metavar="SECONDS", help="of --wait-task: give up after this long (default 30); the task goes on")
    tasks.add_argument("--terminate", action=OptionAction, dest="actions", key="terminate", ops=("revoke_task",), nargs=0,
                       help="of --revoke-task: also stop a method that ignores its signal (reserved by the router)")
    tasks.add_argument("--list-tasks", action=TaskAction, dest="actions", nargs=0, help="print one page of tasks, newest first")
    tasks.add_argument("--state", action=OptionAction, dest="actions", key="state", ops=("list_tasks",), choices=TASK_STATES,
                       help="of --list-tasks: only tasks in this state")
    tasks.add_argument("--method", action=OptionAction, dest="actions", key="method", ops=("list_tasks",), metavar="METHOD",
                       help="of --list-tasks: only tasks of this method")
    tasks.add_argument("--limit", action=OptionAction, dest="actions", key="limit", ops=("list_tasks",), type=int, metavar="N",
                       help="of --list-tasks: at most this many (1..1000, default 50)")
    tasks.add_argument("--cursor", action=OptionAction, dest="actions", key="cursor", ops=("list_tasks",), metavar="CURSOR",
                       help="of --list-tasks: the cursor of the previous page")
    options = parser.parse_args(argv)
    actions = options.actions or []

    try:
        with Client(options.address, api_key=options.api_key, timeout=options.timeout) as client:
            # The demo calls EchoService: run it only when asked, so that the actions work against any router.
            if options.demo or not actions:
                demo(client)
            last_task = None
            for action in actions:
                last_task = run_action(client, action, last_task)
    except VoidRailError as error:
        data = "" if error.data is None else f" {json.dumps(error.data, separators=(',', ':'))}"
        print(f"client.py: {error.code}: {error.message}{data}", file=sys.stderr)
        return 1
    except (zmq.ZMQError, OSError, ValueError) as error:
        print(f"client.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
