/**
 * Owns the process metrics: resident memory, CPU time, start time, read at scrape time. Each is
 * written twice: under the name every Prometheus client library uses (`process_*`, what stock
 * dashboards and alerts query) and under the `voidrail_process_*` name the monitoring issue
 * promised, so both kinds of query find it.
 */
import type { ExpositionWriter } from "./exposition.ts";

const startTimeSeconds = Math.floor(Date.now() / 1000 - process.uptime());

export function writeProcessMetrics(out: ExpositionWriter): void {
  const cpu = process.cpuUsage();
  const readings = [
    ["cpu_seconds_total", "counter", "User and system CPU time of the router process.", (cpu.user + cpu.system) / 1e6],
    ["resident_memory_bytes", "gauge", "Resident memory of the router process.", process.memoryUsage.rss()],
    ["start_time_seconds", "gauge", "Start of the router process, seconds since the epoch.", startTimeSeconds],
  ] as const;
  for (const prefix of ["process_", "voidrail_process_"]) {
    for (const [name, type, help, value] of readings) {
      out.family(`${prefix}${name}`, type, help);
      out.sample(`${prefix}${name}`, value);
    }
  }
}
