/**
 * HelloDeadline on a fake socket: which connections it closes, and when it looks again instead.
 * Real timers of 20 ms; the test waits for the fake's calls (events), never for a fixed time.
 */
import { expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { HelloDeadline, type HelloDeadlineSocket } from "../../src/router/hello-deadline.ts";
import type { ZmtpError } from "../../src/zmtp/index.ts";
import { waitFor, withinLoaded } from "../helpers/wait.ts";

const TIMEOUT_MS = 20;

/** A socket whose peers have `unread` messages waiting; records every check and close. */
function fakeSocket(unread: Map<string, number>) {
  const checks: string[] = [];
  const closed: { key: string; reason: ZmtpError }[] = [];
  const socket: HelloDeadlineSocket = {
    routingKey: (id) => Buffer.from(id as Buffer).toString("latin1"),
    unreadFrom(id) {
      const key = Buffer.from(id as Buffer).toString("latin1");
      checks.push(key);
      return unread.get(key) ?? 0;
    },
    closePeer(id, reason) {
      closed.push({ key: Buffer.from(id as Buffer).toString("latin1"), reason });
      return true;
    },
  };
  return { socket, checks, closed };
}

test("a connection that never identifies itself is closed at the deadline, with a reason that says so", async () => {
  const { socket, closed } = fakeSocket(new Map());
  const hello = new HelloDeadline(socket, TIMEOUT_MS);
  hello.start(Buffer.from("silent"));
  await waitFor(() => closed.length === 1, { timeoutMs: withinLoaded(TIMEOUT_MS), message: "the silent connection to be closed" });
  expect(closed[0].key).toBe("silent");
  expect(closed[0].reason.code).toBe("ETIMEDOUT");
  expect(closed[0].reason.message).toBe(`no VoidRail HELLO with a valid key within ${TIMEOUT_MS} ms`);
  expect(hello.pending).toBe(0);
});

test("met() stops the clock: a connection that identified itself (or is gone) is never closed", async () => {
  const { socket, closed } = fakeSocket(new Map());
  const hello = new HelloDeadline(socket, TIMEOUT_MS);
  hello.start(Buffer.from("welcomed"));
  hello.start(Buffer.from("witness"));
  hello.met("welcomed");
  // The witness started at the same time: once it is closed, the other's deadline has passed too.
  await waitFor(() => closed.length === 1, { timeoutMs: withinLoaded(TIMEOUT_MS), message: "the witness to be closed" });
  expect(closed.map((c) => c.key)).toEqual(["witness"]);
  hello.met("never started"); // ignored
});

test("at the deadline, a connection with unread messages (its HELLO may be among them) gets another interval, then is judged", async () => {
  const unread = new Map([["backlogged", 2]]);
  const { socket, checks, closed } = fakeSocket(unread);
  const hello = new HelloDeadline(socket, TIMEOUT_MS);
  hello.start(Buffer.from("backlogged"));
  await waitFor(() => checks.length === 1, { timeoutMs: withinLoaded(TIMEOUT_MS), message: "the first check" });
  expect(closed).toEqual([]);
  expect(hello.pending).toBe(1);
  // The router reads the backlog; it held no HELLO.
  unread.set("backlogged", 0);
  await waitFor(() => closed.length === 1, { timeoutMs: withinLoaded(TIMEOUT_MS), message: "the second check to close it" });
  expect(checks).toEqual(["backlogged", "backlogged"]);
});

test("clear() stops every clock", async () => {
  const { socket, checks, closed } = fakeSocket(new Map());
  const hello = new HelloDeadline(socket, TIMEOUT_MS);
  hello.start(Buffer.from("a"));
  hello.clear();
  expect(hello.pending).toBe(0);
  // A second instance started after it: when its connection is closed, the first one's timer would have fired.
  const other = fakeSocket(new Map());
  new HelloDeadline(other.socket, TIMEOUT_MS).start(Buffer.from("b"));
  await waitFor(() => other.closed.length === 1, { timeoutMs: withinLoaded(TIMEOUT_MS), message: "the other instance's close" });
  expect([checks, closed]).toEqual([[], []]);
});
