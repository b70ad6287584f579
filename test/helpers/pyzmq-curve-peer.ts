/**
 * Starts test/fixtures/pyzmq-curve-peer.py (libzmq's CURVE through Debian's python3-zmq) and
 * collects its JSON lines. Closing stdin ends it; stop() also kills it if it lingers.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./cluster.ts";
import { onLines } from "./lines.ts";
import { waitFor } from "./wait.ts";

const PYTHON = "/usr/bin/python3";
const PEER = join(ROOT, "test/fixtures/pyzmq-curve-peer.py");

export interface PeerRecord {
  event: string;
  port?: number;
  publicKey?: string;
  name?: string;
  value?: number;
  sizes?: number[];
}

export class PyzmqCurvePeer {
  readonly records: PeerRecord[] = [];
  private stderr = "";
  private exited = false;
  private readonly child;
  private readonly certDir = mkdtempSync(join(tmpdir(), "voidrail-curve-certs-"));

  constructor(args: string[]) {
    const extra = args.includes("--allow") ? ["--cert-dir", this.certDir] : [];
    this.child = spawn(PYTHON, [PEER, ...args, ...extra], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    onLines(this.child.stdout, (line) => {
      try {
        this.records.push(JSON.parse(line) as PeerRecord);
      } catch {
        this.stderr += `non-JSON line: ${line}\n`;
      }
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.child.on("exit", () => {
      this.exited = true;
    });
  }

  /** Resolves with the first record matching `match`, failing at the deadline with what came. */
  async until(match: (record: PeerRecord) => boolean, what: string, timeoutMs = 10_000): Promise<PeerRecord> {
    await waitFor(() => this.exited || this.records.some(match), {
      timeoutMs,
      message: `pyzmq peer: ${what} (records: ${JSON.stringify(this.records.slice(-8))}; stderr: ${this.stderr.slice(-500)})`,
    });
    const found = this.records.find(match);
    if (!found) throw new Error(`pyzmq peer exited before ${what}: ${this.stderr.slice(-1000)}`);
    return found;
  }

  ready(): Promise<PeerRecord> {
    return this.until((r) => r.event === "ready", "ready line");
  }

  monitorEvents(): string[] {
    return this.records.filter((r) => r.event === "monitor").map((r) => r.name ?? "");
  }

  async stop(): Promise<void> {
    if (!this.exited) {
      this.child.stdin.end();
      const deadline = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
      await waitFor(() => this.exited, { timeoutMs: 10_000, message: "pyzmq peer exit" }).finally(() => clearTimeout(deadline));
    }
    rmSync(this.certDir, { recursive: true, force: true });
  }
}
