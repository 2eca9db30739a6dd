import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const file = `.tmp/readme-quickstart-${process.pid}.ts`;
afterAll(() => rmSync(file, { force: true }));

describe('README', () => {
  it('has the two commands', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
  });

  it('quick start runs as written', async () => {
    const readme = readFileSync('README.md', 'utf8');
    const code = /```ts quickstart\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toBeDefined();
    expect(code!.split('\n').filter((line) => line.trim() !== '').length).toBeLessThanOrEqual(30);
    mkdirSync('.tmp', { recursive: true });
    writeFileSync(file, code!);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { timeout: 30_000 });
    expect(stdout).toContain('100 lookups, 1 load');
    expect(stdout).toContain("{ city: 'Oslo', tempC: 4 } 42");
    expect(stdout).toContain('1 job timed by the profiler');
  });
});
