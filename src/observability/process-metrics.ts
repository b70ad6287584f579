/**
 * Owns the process metrics every Prometheus exporter reports (names from the client libraries'
 * conventions): resident memory, CPU time, start time. Read at scrape time.
 */
import type { ExpositionWriter } from "./exposition.ts";

const startTimeSeconds = Math.floor(Date.now() / 1000 - process.uptime());

export function writeProcessMetrics(out: ExpositionWriter): void {
  const cpu = process.cpuUsage();
  out.family("process_cpu_seconds_total", "counter", "User and system CPU time of the router process.");
  out.sample("process_cpu_seconds_total", (cpu.user + cpu.system) / 1e6);
  out.family("process_resident_memory_bytes", "gauge", "Resident memory of the router process.");
  out.sample("process_resident_memory_bytes", process.memoryUsage.rss());
  out.family("process_start_time_seconds", "gauge", "Start of the router process, seconds since the epoch.");
  out.sample("process_start_time_seconds", startTimeSeconds);
}
