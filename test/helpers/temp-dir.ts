/** A temp directory for one suite: made before its tests, removed with everything in it after them. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * Registers `beforeAll`/`afterAll` hooks in the calling suite; call the returned function inside a test
 * for the directory's path (`prefix` names it, so leftovers say which suite made them).
 */
export function useTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error('useTempDir: the directory exists only while the suite runs');
    return dir;
  };
}
