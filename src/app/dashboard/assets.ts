/**
 * The dashboard's static assets, all served from the package: its script and stylesheet (strings in this
 * module, so the bundle carries them) and uPlot's files (read from the `uplot` dependency once, on first use).
 * @module
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import { DASHBOARD_SCRIPT } from './client-script.js';
import { DASHBOARD_CSS } from './page.js';

/** A served file. */
export interface Asset {
  /** Content-Type header. */
  type: string;
  /** The bytes. */
  body: string | Buffer;
}

const UPLOT_FILES: Record<string, [string, string]> = {
  'uplot.js': ['uplot/dist/uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
  'uplot.css': ['uplot/dist/uPlot.min.css', 'text/css; charset=utf-8'],
};

const loaded = new Map<string, Asset>();

/** The asset named `name` (`dashboard.js`, `dashboard.css`, `uplot.js`, `uplot.css`), or undefined. */
export function readAsset(name: string): Asset | undefined {
  if (name === 'dashboard.js') return { type: 'text/javascript; charset=utf-8', body: DASHBOARD_SCRIPT };
  if (name === 'dashboard.css') return { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS };
  const file = Object.hasOwn(UPLOT_FILES, name) ? UPLOT_FILES[name] : undefined;
  if (file === undefined) return undefined;
  let asset = loaded.get(name);
  if (asset === undefined) {
    // Works from the ESM and the CJS build alike (`__filename` exists only in CommonJS; `node -e` sets it to
    // '[eval]', hence the absolute-path check).
    const here = typeof __filename === 'string' && isAbsolute(__filename) ? __filename : import.meta.url;
    const require = createRequire(here);
    asset = { type: file[1], body: readFileSync(require.resolve(file[0])) };
    loaded.set(name, asset);
  }
  return asset;
}
