import { inspect } from 'node:util';
import { APIClient, ResponseParseError } from 'hotpath/client';
import { createConsoleLogger, HttpError, RateLimitError, TimeoutError } from 'hotpath/core';
import { afterEach, describe, expect, it } from 'vitest';
import { hang, json, type ScriptedServer, startServer, text } from './scripted-server.js';

const SECRETS = ['s3cr3t-bearer', 's3cr3t-apikey', 's3cr3t-cookie', 's3cr3t-setcookie', 's3cr3t-query', 's3cr3t-token'];

/** Every way an error reaches a log or a response. */
function surfaces(error: unknown): string[] {
  const e = error as Error & { toJSON?: () => unknown };
  return [
    e.message,
    String(e),
    e.stack ?? '',
    JSON.stringify(e),
    JSON.stringify(e.toJSON?.()),
    inspect(e, { depth: 10 }),
  ];
}

function expectNoSecrets(texts: string[]): void {
  for (const t of texts) for (const secret of SECRETS) expect(t).not.toContain(secret);
}

let s: ScriptedServer;
let api: APIClient;
const lines: string[] = [];
afterEach(async () => {
  await api.close();
  await s.close();
  lines.length = 0;
});

function secretClient(options: Partial<ConstructorParameters<typeof APIClient>[0]> = {}): APIClient {
  return new APIClient({
    baseUrl: s.url,
    headers: {
      Authorization: 'Bearer s3cr3t-bearer',
      'X-API-Key': 's3cr3t-apikey',
      Cookie: 'sid=s3cr3t-cookie',
    },
    logger: createConsoleLogger('debug', (line) => lines.push(line)),
    retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 2 },
    ...options,
  });
}

const secretQuery = { api_key: 's3cr3t-query', access_token: 's3cr3t-token', page: 2 };

describe('secrets never leave through errors or logs', () => {
  it('HttpError (with Set-Cookie in the response) and the retry log lines', async () => {
    s = await startServer(json(503, { error: 'busy' }, { 'set-cookie': 'sid=s3cr3t-setcookie; HttpOnly' }));
    api = secretClient();
    const error = await api.get('/me', { query: secretQuery }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).headers['set-cookie']).toBe('[REDACTED]');
    expect((error as HttpError).url).toContain('page=2');
    expect(s.seen[0]?.headers.authorization).toBe('Bearer s3cr3t-bearer'); // it was sent, just never shown
    expect(lines.length).toBeGreaterThan(0); // the retry was logged
    expectNoSecrets([...surfaces(error), ...lines]);
  });

  it('TimeoutError', async () => {
    s = await startServer(hang);
    api = secretClient({ attemptTimeoutMs: 30, retry: false });
    const error = await api.get('/me', { query: secretQuery }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expectNoSecrets([...surfaces(error), ...lines]);
  });

  it('RateLimitError and its HttpError cause', async () => {
    s = await startServer(json(429, {}, { 'retry-after': '3600', 'set-cookie': 's3cr3t-setcookie' }));
    api = secretClient({ timeoutMs: 1000 });
    const error = await api.get('/me', { query: secretQuery }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).cause).toBeInstanceOf(HttpError);
    expectNoSecrets([...surfaces(error), ...surfaces((error as Error).cause), ...lines]);
  });

  it('ResponseParseError', async () => {
    s = await startServer(text(200, 'not json', { 'set-cookie': 's3cr3t-setcookie' }));
    api = secretClient();
    const error = await api.get('/me', { query: secretQuery }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResponseParseError);
    expectNoSecrets([...surfaces(error), ...lines]);
  });

  it('configuration errors about headers never echo the value', () => {
    s = { close: async () => {} } as ScriptedServer;
    api = { close: async () => {} } as APIClient;
    const error = (() => {
      try {
        // A plausible mistake that carries the credential: an array instead of a string.
        const value = ['Bearer s3cr3t-bearer'] as unknown as string;
        new APIClient({ baseUrl: 'http://127.0.0.1:1', headers: { authorization: value } });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'ERR_HOTPATH_CONFIG' });
    expect(String(error)).toContain('authorization');
    expectNoSecrets(surfaces(error));
    expect(() => new APIClient({ baseUrl: 'http://user:s3cr3t-bearer@127.0.0.1:1' })).toThrow(/credentials/);
    try {
      new APIClient({ baseUrl: 'http://user:s3cr3t-bearer@127.0.0.1:1' });
    } catch (e) {
      expectNoSecrets(surfaces(e));
    }
  });
});
