/**
 * Owns the dashboard's static files. They are imported as text, so `bun build --compile` embeds
 * them in the binary and nothing is fetched from a CDN: preact + htm (a 5 KB UI library and
 * JSX-like templates without a build step) and uPlot (a 50 KB canvas chart library, fast with
 * hundreds of points) from npm, and the dashboard's own script and style beside this file.
 * Loaded only when the HTTP server starts: import attributes of type "text" need Bun.
 */
/// <reference path="./text-modules.d.ts" />
import htmJs from "htm" with { type: "text" };
import preactJs from "preact" with { type: "text" };
import hooksJs from "preact/hooks" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.esm.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import appJs from "./app.js" with { type: "text" };
import styleCss from "./style.css" with { type: "text" };

export interface Asset {
  body: string;
  type: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** Files under /assets/, by name. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["preact.js", { body: String(preactJs), type: JS }],
  ["hooks.js", { body: String(hooksJs), type: JS }],
  ["htm.js", { body: String(htmJs), type: JS }],
  ["uplot.js", { body: String(uplotJs), type: JS }],
  ["uplot.css", { body: String(uplotCss), type: CSS }],
  ["app.js", { body: String(appJs), type: JS }],
  ["style.css", { body: String(styleCss), type: CSS }],
]);

/** Maps the bare names the scripts import to the served files. */
export const IMPORT_MAP = JSON.stringify({
  imports: { preact: "/assets/preact.js", "preact/hooks": "/assets/hooks.js", htm: "/assets/htm.js", uplot: "/assets/uplot.js" },
});
