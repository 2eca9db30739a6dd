/**
 * Disks that fill and processes that die mid-write, on SQLite:
 * - on a small tmpfs mounted by the test, a write that hits ENOSPC rejects with `StorageError`, the file
 *   stays intact (`PRAGMA integrity_check` = ok, earlier documents readable), and writes succeed again once
 *   space is freed. Needs root to mount; elsewhere the test skips with one line.
 * - a process killed with SIGKILL in the middle of a 100,000-document `putMany` leaves all of it or none.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isHotpathError, StorageError } from 'hotpath/core';
import { SqliteStorage } from 'hotpath/storage';
import { afterAll, describe, expect, it } from 'vitest';

function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'hp-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const hasTmpfs = canMountTmpfs();
if (!hasTmpfs) console.warn('[skip] disk-full test: mounting a tmpfs needs root (mount -t tmpfs); skipping it');

/** Writes 64 KiB chunks into `path` until the disk refuses one; returns the bytes written. */
function fillDisk(path: string): number {
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(path, `filler-${i}`), chunk);
      written += chunk.length;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return written;
      throw error;
    }
  }
}

describe.runIf(hasTmpfs)('SQLite on a full disk', () => {
  const mountPoint = mkdtempSync(join(tmpdir(), 'hp-tmpfs-'));
  afterAll(() => {
    try {
      execFileSync('umount', [mountPoint], { stdio: 'ignore' });
    } finally {
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  it('rejects with StorageError at ENOSPC, stays intact, and writes again once space is freed', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint]);
    const dataDir = join(mountPoint, 'db');
    const fillerDir = join(mountPoint, 'filler');
    mkdirSync(dataDir);
    mkdirSync(fillerDir);
    const storage = new SqliteStorage({ filename: join(dataDir, 'full.sqlite') });
    try {
      const before = Array.from({ length: 50 }, (_, i) => ({ id: `keep${i}`, i, text: 'k'.repeat(500) }));
      await storage.putMany('docs', before);
      expect(fillDisk(fillerDir)).toBeGreaterThan(0);

      const failures: unknown[] = [];
      for (let i = 0; i < 200 && failures.length === 0; i++) {
        try {
          await storage.putMany(
            'docs',
            Array.from({ length: 20 }, (_, j) => ({ id: `big${i}-${j}`, text: 'b'.repeat(8_000) })),
          );
        } catch (error) {
          failures.push(error);
        }
      }
      expect(failures).toHaveLength(1);
      const error = failures[0];
      expect(error).toBeInstanceOf(StorageError);
      expect(isHotpathError(error, ErrorCode.Storage)).toBe(true);
      expect(String((error as Error).message) + String((error as Error).cause)).toMatch(/full|space|SQLITE_FULL/i);

      // Intact: the file checks out and every acknowledged document is readable.
      const check = await storage.sql?.query<{ integrity_check: string }>('PRAGMA integrity_check');
      expect(check?.[0]?.integrity_check).toBe('ok');
      for (const doc of before) expect(await storage.get('docs', doc.id)).toMatchObject({ i: doc.i });

      // Space freed: writes go through again.
      rmSync(fillerDir, { recursive: true, force: true });
      await storage.put('docs', { id: 'after', ok: true });
      expect(await storage.get('docs', 'after')).toEqual({ id: 'after', ok: true });
      const recheck = await storage.sql?.query<{ integrity_check: string }>('PRAGMA integrity_check');
      expect(recheck?.[0]?.integrity_check).toBe('ok');
    } finally {
      await storage.close();
    }
  });
});

describe('SIGKILL in the middle of a 100,000-document putMany', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-killbulk-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts the child, kills it `delayMs` after it began the putMany; resolves whether it had finished. */
  function killDuring(filename: string, delayMs: number): Promise<{ finished: boolean }> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/faults/fixtures/put-many-child.ts', filename, '100000'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('start\n') && !output.includes('killing')) {
          output += 'killing';
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child exited ${code}: ${stderr}`));
        else resolve({ finished: output.includes('done\n') });
      });
    });
  }

  it('leaves all of it or none of it, and the file checks out', async () => {
    const outcomes: number[] = [];
    for (const [round, delayMs] of [5, 40, 120, 300].entries()) {
      const filename = join(dir, `bulk-${round}.sqlite`);
      const { finished } = await killDuring(filename, delayMs);
      const storage = new SqliteStorage({ filename });
      try {
        const count = await storage.count('bulk');
        outcomes.push(count);
        expect([0, 100_000]).toContain(count);
        if (finished) expect(count).toBe(100_000);
        const check = await storage.sql?.query<{ integrity_check: string }>('PRAGMA integrity_check');
        expect(check?.[0]?.integrity_check).toBe('ok');
      } finally {
        await storage.close();
      }
    }
    // At least one kill must have landed inside the write, or the test proved nothing.
    expect(outcomes).toContain(0);
  });
});
