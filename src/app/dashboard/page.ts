/**
 * The dashboard's HTML shell and stylesheet. The shell carries only the base path and the page's CSRF token
 * (both escaped); everything else is drawn by the client script from JSON with `textContent`, never as HTML.
 * @module
 */

/** What {@link renderPage} needs. */
export interface PageOptions {
  /** Mount path, e.g. `/dashboard`. */
  basePath: string;
  /** The CSRF token issued with this page. */
  csrfToken: string;
  /** Whether to show action buttons (the server checks every action anyway). */
  canAct: boolean;
}

/** Escapes text for an HTML attribute value or text node. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page and its Content-Security-Policy (scripts, styles and connections from this origin only). */
export function renderPage(options: PageOptions): { html: string; contentSecurityPolicy: string } {
  const base = escapeHtml(options.basePath);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="hotpath-base" content="${base}">
<meta name="csrf-token" content="${escapeHtml(options.csrfToken)}">
<meta name="hotpath-can-act" content="${options.canAct ? 'true' : 'false'}">
<title>hotpath dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${base}/assets/uplot.css">
<link rel="stylesheet" href="${base}/assets/dashboard.css">
</head>
<body>
<header>
  <h1>hotpath</h1>
  <span id="connection" class="badge">connecting…</span>
  <span id="mode" class="badge"></span>
  <span id="config" class="muted"></span>
</header>
<main>
  <section id="queue-panel"><h2>Queue</h2><div class="body"></div></section>
  <section id="caches-panel"><h2>Caches</h2><div class="body"></div></section>
  <section id="limiters-panel"><h2>Rate limiters</h2><div class="body"></div></section>
  <section id="profiler-panel"><h2>Profiler</h2><div class="body"></div></section>
  <section id="storage-panel"><h2>Storage</h2><div class="body"></div></section>
</main>
<script src="${base}/assets/uplot.js"></script>
<script src="${base}/assets/dashboard.js"></script>
</body>
</html>
`;
  const contentSecurityPolicy = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, contentSecurityPolicy };
}

/** The dashboard's stylesheet (about 2 KB). */
export const DASHBOARD_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #667; --bg: #f6f7f9; --card: #fff; --line: #dde1e6;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8b949e; --bg: #0d1117; --card: #161b22;
  --line: #30363d; --ok: #3fb950; --bad: #f85149; --warn: #d29922; --accent: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 12px; align-items: center; padding: 10px 16px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; } h2 { font-size: 16px; margin: 0 0 8px; } h3 { font-size: 14px; margin: 12px 0 6px; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 12px; padding: 12px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px; min-width: 0; }
#queue-panel, #profiler-panel { grid-column: 1 / -1; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-height: 12em; overflow: auto; font-size: 12px; }
.badge { border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; font-size: 12px; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); } .muted { color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 8px; }
.count { border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; }
.count b { font-size: 18px; display: block; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { min-width: 300px; }
.figures { display: flex; gap: 16px; flex-wrap: wrap; margin-bottom: 8px; }
.figure b { font-size: 18px; display: block; }
button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid var(--line); border-radius: 4px;
  background: var(--bg); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
input, select { font: inherit; font-size: 12px; padding: 2px 4px; }
progress { width: 120px; }
.row-actions { white-space: nowrap; }
.error { color: var(--bad); }
#toast { position: fixed; bottom: 12px; right: 12px; background: var(--card); border: 1px solid var(--line);
  padding: 6px 10px; border-radius: 6px; }
`;
