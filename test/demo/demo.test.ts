import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { needsPostgres, PG_URL } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

const run = promisify(execFile);

async function runDemo(args: string[]) {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'demo/main.ts', ...args], {
    env: { ...process.env, HOTPATH_PG_URL: PG_URL },
    timeout: 60_000,
  });
  return stdout;
}

function expectReport(stdout: string, storage: string) {
  expect(stdout).toContain(`storage: ${storage}`);
  expect(stdout).toMatch(/lookups\s+400 \(\d+ distinct symbols, 0 failed\)/);
  const requests = Number(/upstream requests\s+(\d+)/.exec(stdout)?.[1]);
  const distinct = Number(/\((\d+) distinct symbols/.exec(stdout)?.[1]);
  // The cache means each distinct symbol is fetched once (plus retries), never once per lookup.
  expect(requests).toBeGreaterThanOrEqual(distinct);
  expect(requests).toBeLessThan(400);
  expect(stdout).toMatch(/cache hit rate\s+\d+\.\d%/);
  expect(stdout).toMatch(/jobs done\s+(\d+)\/\1 analysis jobs/);
  expect(stdout).toMatch(/client\.request GET \/quotes\/:symbol\s+\d+/);
  expect(stdout).toMatch(/queue\.job\.analyze\s+\d+/);
  expect(stdout).toMatch(/done in \d+\.\d s/);
}

describe('npm run demo', () => {
  it('runs the main job on the embedded defaults (SQLite file + memory) and reports measured numbers', async () => {
    expectReport(await runDemo([]), 'sqlite');
  });

  it.runIf(hasPostgres)('runs the same workload on PostgreSQL with --postgres', async () => {
    expectReport(await runDemo(['--postgres']), 'postgres');
  });
});
