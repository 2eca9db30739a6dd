/**
 * What `npm pack` ships: every file the README links to, and the sources the build's source maps point at
 * (`npm pack --dry-run` lists the files without building; when `dist/` exists its maps are checked too).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

async function packedFiles(): Promise<Set<string>> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const [report] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  return new Set((report?.files ?? []).map((file) => file.path));
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

describe('the npm package', () => {
  it('ships every local file the README links to, and the sources the source maps name', async () => {
    const files = await packedFiles();
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)].map((match) => normalize(match[1] as string));
    expect(links.length).toBeGreaterThan(5);
    const missing = links.filter((link) => !files.has(link));
    expect(missing).toEqual([]);
    for (const source of listFiles(join(root, 'src')).filter((file) => file.endsWith('.ts'))) {
      expect(files.has(relative(root, source)), relative(root, source)).toBe(true);
    }
    expect([...files].some((file) => file.startsWith('docs/api/'))).toBe(false);
    expect([...files].some((file) => file.startsWith('test/'))).toBe(false);

    // When built (and the build is not older than the sources), every source a map names is a shipped file.
    const dist = join(root, 'dist');
    if (!existsSync(dist)) return;
    const newestSource = Math.max(...listFiles(join(root, 'src')).map((file) => statSync(file).mtimeMs));
    if (statSync(join(dist, 'index.js')).mtimeMs < newestSource) return;
    const maps = listFiles(dist).filter((file) => file.endsWith('.map'));
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const target = relative(root, resolve(join(map, '..'), source));
        if (target.startsWith('node_modules')) continue;
        expect(files.has(target) || target.startsWith('dist/'), `${relative(root, map)} → ${source}`).toBe(true);
      }
    }
  }, 120_000);
});
