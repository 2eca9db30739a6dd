/**
 * Loads an optional peer dependency (better-sqlite3, pg) only when a backend is constructed, so
 * `hotpath/storage` imports without them and a missing driver names the package to install.
 * @module
 */
import { createRequire } from 'node:module';
import { ConfigError } from '../core/errors.js';

let cachedRequire: NodeRequire | undefined;

function nodeRequire(): NodeRequire {
  if (cachedRequire) return cachedRequire;
  // CommonJS builds have __filename; ESM builds resolve from this module's URL. Not `typeof require`:
  // bundlers (esbuild/tsup) rewrite `require` in ESM output into a shim that throws "Dynamic require".
  cachedRequire = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
  return cachedRequire;
}

/**
 * Requires `packageName`, returning its default export when it has one.
 * @throws ConfigError naming the package and the install command when it is not installed.
 */
export function loadDriver<T>(packageName: string, forWhat: string): T {
  let loaded: unknown;
  try {
    loaded = nodeRequire()(packageName);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND')
      throw missingDriver(packageName, forWhat, error);
    throw error;
  }
  const withDefault = loaded as { default?: unknown };
  return (withDefault.default ?? loaded) as T;
}

/**
 * The resolved entry file of `packageName`, for a worker thread that must load the same copy.
 * @throws ConfigError naming the package when it is not installed.
 */
export function resolveDriver(packageName: string, forWhat: string): string {
  try {
    return nodeRequire().resolve(packageName);
  } catch (error) {
    throw missingDriver(packageName, forWhat, error);
  }
}

function missingDriver(packageName: string, forWhat: string, cause: unknown): ConfigError {
  return new ConfigError(
    'driver',
    `${forWhat} needs the "${packageName}" package: run \`npm install ${packageName}\``,
    {
      cause,
    },
  );
}
