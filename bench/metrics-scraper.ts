/**
 * A Prometheus stand-in for the benches: fetches URL every second until stdin closes, then prints
 * how many scrapes it made. It runs in a process of its own, as Prometheus does: a poller inside
 * the benchmark's client process changed how that client's event loop batched its sends, which
 * showed up as router CPU per call that no scrape had cost.
 *
 *   bun bench/metrics-scraper.ts http://127.0.0.1:PORT/metrics
 *
 * For finding where the HTTP server's cost comes from: SCRAPE_EVERY_MS (default 1000) and
 * SCRAPE_CLOSE=1 (no keep-alive); bench/http-overhead.ts takes SCRAPE_PATH (e.g. /healthz).
 */
export {};

const url = process.argv[2];
if (!url) throw new Error("usage: bun bench/metrics-scraper.ts URL");
let scrapes = 0;
let running = true;
process.stdin.on("end", () => {
  running = false;
});
process.stdin.resume();
while (running) {
  const response = await fetch(url, process.env.SCRAPE_CLOSE ? { headers: { connection: "close" }, keepalive: false } : {});
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
  await response.text();
  scrapes++;
  const everyMs = Number(process.env.SCRAPE_EVERY_MS ?? 1000);
  for (let waited = 0; running && waited < everyMs; waited += 50) await Bun.sleep(Math.min(50, everyMs));
}
console.log(scrapes);
