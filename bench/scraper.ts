/** Starts bench/metrics-scraper.ts on `url` in a process of its own; `stop()` ends it and gives its scrape count. */
export function startScraper(url: string): { stop(): Promise<number> } {
  const child = Bun.spawn([process.execPath, new URL("./metrics-scraper.ts", import.meta.url).pathname, url], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  return {
    async stop() {
      child.stdin.end();
      const out = await new Response(child.stdout).text();
      const code = await child.exited;
      if (code !== 0) throw new Error(`the /metrics scraper exited with ${code}`);
      return Number(out.trim());
    },
  };
}
