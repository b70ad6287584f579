/**
 * Owns the dashboard's two HTML pages: the app shell (its scripts come from /assets/) and the
 * login form. The only inline script is the import map, allowed by its hash in the
 * Content-Security-Policy; everything else must come from this server.
 */
import { createHash } from "node:crypto";
import { IMPORT_MAP } from "./assets.ts";

const IMPORT_MAP_HASH = createHash("sha256").update(IMPORT_MAP).digest("base64");

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  `script-src 'self' 'sha256-${IMPORT_MAP_HASH}'`,
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function dashboardPage(version: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>VoidRail</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uplot.css">
<link rel="stylesheet" href="/assets/style.css">
<script type="importmap">${IMPORT_MAP}</script>
<script type="module" src="/assets/app.js"></script>
</head>
<body data-version="${escapeHtml(version)}">
<div id="app"><p class="loading">Loading the dashboard…</p></div>
</body>
</html>
`;
}

export function loginPage(message: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>VoidRail: sign in</title>
<link rel="icon" href="data:,">
<style>body{font:16px system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;background:#f4f5f7;color:#1d2330}form{background:#fff;padding:2rem;border-radius:10px;box-shadow:0 2px 12px #0002;max-width:22rem;width:90%}input,button{font:inherit;width:100%;box-sizing:border-box;padding:.55rem;margin:.4rem 0}button{background:#3056d3;color:#fff;border:0;border-radius:6px}.error{color:#b3261e}</style>
</head>
<body class="login">
<form method="post" action="/login">
<h1>VoidRail</h1>
<p>This router's dashboard needs its token (<code>--http-token</code>).</p>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ""}
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}
