/**
 * A loopback upstream (node:http, in a child process so it keeps its own event loop and clock reads)
 * that enforces `limit` requests per `windowMs` by *arrival* time, as real APIs count: a request is
 * refused with 429 (`Retry-After: 1`) when `limit` accepted requests arrived in the `windowMs` before
 * it. Refused requests do not count. `GET /__stats` reports what it saw (not counted).
 * Used by test/client/quota.test.ts and bench/client.bench.ts.
 */
import { spawn } from 'node:child_process';

const SERVER = `
const http = require('node:http');
const limit = Number(process.argv[1]);
const windowMs = Number(process.argv[2]);
const accepted = [];
let head = 0;
let acceptedCount = 0;
let refused = 0;
let firstAt;
let lastAt;
const log = [];
const server = http.createServer((req, res) => {
  const now = performance.now();
  if (req.url === '/__stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accepted: acceptedCount, refused, spanMs: firstAt === undefined ? 0 : lastAt - firstAt, acceptedAt: log }));
    return;
  }
  while (head < accepted.length && accepted[head] <= now - windowMs) head++;
  if (head > 4096) { accepted.splice(0, head); head = 0; }
  if (accepted.length - head >= limit) {
    refused++;
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end('{"error":"too many requests"}');
    return;
  }
  accepted.push(now);
  acceptedCount++;
  firstAt ??= now;
  log.push(Math.round(now - firstAt));
  lastAt = now;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"ok":true}');
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/** What the upstream saw. */
export interface QuotaStats {
  /** Requests answered 200 (counted against the quota). */
  accepted: number;
  /** Requests answered 429 because the quota was used up at their arrival. */
  refused: number;
  /** Milliseconds between the first and the last accepted arrival. */
  spanMs: number;
  /** Arrival of every accepted request, in ms after the first one. */
  acceptedAt: number[];
}

/** A running quota upstream. */
export interface QuotaUpstream {
  url: string;
  stats(): Promise<QuotaStats>;
  close(): Promise<void>;
}

/** Starts an upstream enforcing `limit` per `windowMs` by arrival time. */
export async function startQuotaUpstream(limit: number, windowMs: number): Promise<QuotaUpstream> {
  const child = spawn(process.execPath, ['-e', SERVER, String(limit), String(windowMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('error', reject);
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async stats() {
      const response = await fetch(`${url}/__stats`);
      return (await response.json()) as QuotaStats;
    },
    close() {
      return new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
      });
    },
  };
}
