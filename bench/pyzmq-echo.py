"""The libzmq reference rows of bench/zmtp.ts: pyzmq (Debian's python3-zmq) DEALER <-> ROUTER echo.

  python3 bench/pyzmq-echo.py --messages N --size B --round-trips N --runs N [--curve]

Router and Dealer run in this one process (the Router on a thread of its own: libzmq does the
I/O on its background thread either way). Prints the JSON lines bench/zmtp.ts reads from its own
children: {"hello"}, one {"result"} per run (pipelined msg/s; sequential round trips/s with
p50/p99 in microseconds), then {"done"}.
"""
import argparse
import json
import sys
import threading
import time

import zmq

parser = argparse.ArgumentParser()
parser.add_argument("--messages", type=int, default=200000)
parser.add_argument("--size", type=int, default=100)
parser.add_argument("--round-trips", type=int, default=20000)
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--curve", action="store_true")
args, _ = parser.parse_known_args()


def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


ctx = zmq.Context()
server_public, server_secret = zmq.curve_keypair()
router = ctx.socket(zmq.ROUTER)
router.linger = 0
# As for the zeromq.js rows: at the high-water mark a ROUTER drops silently unless mandatory, and
# the pipelined loop would then wait forever for lost echoes; mandatory makes send() wait.
router.router_mandatory = 1
if args.curve:
    # No ZAP handler: libzmq admits every client with a valid vouch (encryption, no allow-list).
    router.curve_secretkey = server_secret
    router.curve_server = True
port = router.bind_to_random_port("tcp://127.0.0.1")
stop = threading.Event()


def echo():
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    while not stop.is_set():
        if poller.poll(100):
            router.send_multipart(router.recv_multipart(copy=False), copy=False)


threading.Thread(target=echo, daemon=True).start()
dealer = ctx.socket(zmq.DEALER)
dealer.linger = 0
if args.curve:
    public, secret = zmq.curve_keypair()
    dealer.curve_serverkey = server_public
    dealer.curve_publickey = public
    dealer.curve_secretkey = secret
dealer.connect("tcp://127.0.0.1:%d" % port)
payload = b"a" * args.size


def pipelined(count):
    poller = zmq.Poller()
    poller.register(dealer, zmq.POLLIN | zmq.POLLOUT)
    sent = received = 0
    started = time.perf_counter()
    while received < count:
        for _, events in poller.poll():
            if events & zmq.POLLIN:
                while received < count:
                    try:
                        dealer.recv(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    received += 1
            if events & zmq.POLLOUT and sent < count:
                while sent < count:
                    try:
                        dealer.send(payload, zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    sent += 1
        if sent >= count:
            poller.modify(dealer, zmq.POLLIN)
    return count / (time.perf_counter() - started)


def sequential(count):
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        sent_at = time.perf_counter()
        dealer.send(payload, copy=False)
        dealer.recv(copy=False)
        samples.append((time.perf_counter() - sent_at) * 1e6)
    elapsed = time.perf_counter() - started
    samples.sort()
    rank = lambda fraction: samples[min(len(samples) - 1, max(0, int(-(-fraction * len(samples) // 1)) - 1))]
    return {"perSecond": count / elapsed, "p50Us": rank(0.5), "p99Us": rank(0.99)}


emit({"hello": {"runtime": "python", "version": sys.version.split()[0], "libzmq": zmq.zmq_version()}})
emit({"result": {"kind": "pipelined", "warmup": True, "perSecond": pipelined(min(args.messages, 50000))}})
emit({"result": dict(kind="sequential", warmup=True, **sequential(min(args.round_trips, 5000)))})
for _ in range(args.runs):
    emit({"result": {"kind": "pipelined", "warmup": False, "perSecond": pipelined(args.messages)}})
    emit({"result": dict(kind="sequential", warmup=False, **sequential(args.round_trips))})
stop.set()
emit({"done": True})
