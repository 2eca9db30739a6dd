import { readdirSync, statSync } from 'node:fs';
import { defineConfig } from 'tsup';

// One entry per module folder that has an index.ts, so a new module gets its subpath by existing.
const modules = readdirSync('src').filter((name) => {
  try {
    return statSync(`src/${name}/index.ts`).isFile();
  } catch {
    return false;
  }
});

export default defineConfig({
  // src/cli/main.ts is the `hotpath` bin (no index.ts: it is not an importable subpath).
  entry: ['src/index.ts', ...modules.map((name) => `src/${name}/index.ts`), 'src/cli/main.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  treeshake: true,
  external: ['better-sqlite3', 'pg', 'ioredis'],
});
