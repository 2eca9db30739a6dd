/**
 * Durability proven with SIGKILL: a child process acknowledges writes and is killed mid-stream; every
 * acknowledged write must be there when the database is opened again. Then PostgreSQL connections are
 * terminated under load: no acknowledged write is lost and the pool recovers.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHotpathError } from 'hotpath/core';
import { PostgresStorage, SqliteStorage, type StorageAdapter } from 'hotpath/storage';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshPgSchema, needsPostgres, PG_URL } from '../helpers/services.js';

const hasPostgres = await needsPostgres();

const ACKS_BEFORE_KILL = 300;

/** Runs the writer until it has acknowledged `count` writes (or more), kills it, returns the last ack. */
function runAndKill(target: string, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/storage/fixtures/durable-writer.ts', target], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastAck = -1;
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^ack (\d+)$/.exec(line);
        if (match) lastAck = Number(match[1]);
      }
      if (lastAck + 1 >= count && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(lastAck);
      else reject(new Error(`writer exited with ${code}: ${stderr}`));
    });
  });
}

async function expectAllAcknowledged(storage: StorageAdapter, lastAck: number): Promise<void> {
  const missing: string[] = [];
  for (let i = 0; i <= lastAck; i++) {
    const ids = i % 10 === 9 ? [`m${i}a`, `m${i}b`] : [`w${i}`];
    for (const id of ids) if ((await storage.get('durable', id)) === undefined) missing.push(id);
  }
  expect(missing).toEqual([]);
}

describe('SQLite durability', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-durable-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every write acknowledged before SIGKILL is there on reopen', async () => {
    const file = join(dir, 'durable.db');
    const lastAck = await runAndKill(file, ACKS_BEFORE_KILL);
    expect(lastAck).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL - 1);
    const storage = new SqliteStorage({ filename: file });
    try {
      await expectAllAcknowledged(storage, lastAck);
    } finally {
      await storage.close();
    }
  });
});

describe.runIf(hasPostgres)('PostgreSQL durability and connection loss', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>> | undefined;
  afterAll(async () => {
    await schema?.drop();
  });

  it('every write acknowledged before SIGKILL is there afterwards', async () => {
    schema = await freshPgSchema('hp_durable');
    const lastAck = await runAndKill(schema.url, ACKS_BEFORE_KILL);
    expect(lastAck).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL - 1);
    const storage = new PostgresStorage({ connectionString: schema.url, max: 2 });
    try {
      await expectAllAcknowledged(storage, lastAck);
    } finally {
      await storage.close();
    }
  });

  it('pg_terminate_backend on every pool connection under load: in-flight calls fail with StorageError, no acknowledged write is lost, the pool recovers', async () => {
    schema ??= await freshPgSchema('hp_durable');
    const applicationName = `hp_term_${process.pid}`;
    const storage = new PostgresStorage({ connectionString: schema.url, max: 6, applicationName });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const acked: string[] = [];
    const failures: unknown[] = [];
    let stop = false;
    let seq = 0;
    const worker = async (w: number): Promise<void> => {
      while (!stop) {
        const id = `t${w}-${seq++}`;
        try {
          if (seq % 5 === 0) {
            await storage.transaction(async (tx) => {
              await tx.put('load', { id, w });
              await tx.get('load', id);
            });
          } else {
            await storage.put('load', { id, w });
            await storage.get('load', id);
          }
          acked.push(id);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const workers = Array.from({ length: 12 }, (_, w) => worker(w));
    try {
      const killRounds = 3;
      for (let round = 0; round < killRounds; round++) {
        const target = acked.length + 100;
        while (acked.length < target) await new Promise((r) => setTimeout(r, 5));
        const killed = await admin.query(
          'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        expect(killed.rows.length).toBeGreaterThan(0);
      }
      const target = acked.length + 200;
      while (acked.length < target) await new Promise((r) => setTimeout(r, 5));
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    // The kills did hit in-flight calls, and every failure is a typed StorageError (with the driver's error as
    // cause), never a crash.
    expect(failures.length).toBeGreaterThan(0);
    for (const error of failures) {
      expect(isHotpathError(error, 'ERR_HOTPATH_STORAGE')).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(Error);
    }
    const failedAfterRecovery = await storage.health();
    expect(failedAfterRecovery.ok).toBe(true);
    expect(storage.stats().total).toBeGreaterThan(0);
    const counted = await admin.query(
      `SELECT count(*)::int AS n FROM "${schema.schema}".doc_load WHERE id = ANY($1::text[])`,
      [acked],
    );
    expect(counted.rows[0].n).toBe(acked.length);
    await admin.end();
    await storage.close();
  });
});
