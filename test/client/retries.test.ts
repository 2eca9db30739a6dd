import { APIClient } from 'hotpath/client';
import { HttpError, ManualClock, RateLimitError, TimeoutError } from 'hotpath/core';
import { RateLimiter } from 'hotpath/ratelimit';
import { afterEach, describe, expect, it } from 'vitest';
import { drive, until } from './drive.js';
import { hang, json, type ScriptedServer, startServer } from './scripted-server.js';

const open: Array<{ close(): Promise<void> }> = [];
async function server(): Promise<ScriptedServer> {
  const s = await startServer();
  open.push(s);
  return s;
}
function limiter(clock: ManualClock): RateLimiter {
  const l = new RateLimiter({ limit: 1000, intervalMs: 1000, clock });
  open.unshift(l);
  return l;
}
function client(options: ConstructorParameters<typeof APIClient>[0]): APIClient {
  const c = new APIClient(options);
  open.unshift(c);
  return c;
}
afterEach(async () => {
  for (const item of open.splice(0)) await item.close();
});

const FAST = { baseDelayMs: 1, maxDelayMs: 5 };

describe('retry policy', () => {
  it('retries a GET on 503 and succeeds', async () => {
    const s = await server();
    s.script(json(503, { e: 1 }), json(503, { e: 2 }));
    const api = client({ baseUrl: s.url, retry: { retries: 3, ...FAST } });
    await expect(api.get('/x')).resolves.toEqual({ ok: true });
    expect(s.seen).toHaveLength(3);
    expect(api.stats()).toMatchObject({ requests: 1, attempts: 3, retries: 2, succeeded: 1, failed: 0, throttled: 2 });
  });

  it('does not retry 4xx other than 408/425/429', async () => {
    const s = await server();
    s.setDefault(json(404, { missing: true }));
    const api = client({ baseUrl: s.url, retry: { retries: 3, ...FAST } });
    const error = await api.get('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(404);
    expect((error as HttpError).body).toBe('{"missing":true}');
    expect(s.seen).toHaveLength(1);
  });

  it('gives up after `retries` and throws the last HttpError', async () => {
    const s = await server();
    s.setDefault(json(502, { bad: 'gateway' }));
    const api = client({ baseUrl: s.url, retry: { retries: 2, ...FAST } });
    await expect(api.get('/x')).rejects.toMatchObject({ status: 502, method: 'GET' });
    expect(s.seen).toHaveLength(3);
  });

  it('does not retry POST on 503 by default', async () => {
    const s = await server();
    s.setDefault(json(503, {}));
    const api = client({ baseUrl: s.url, retry: { retries: 3, ...FAST } });
    await expect(api.post('/orders', { json: { qty: 1 } })).rejects.toMatchObject({ status: 503 });
    expect(s.seen).toHaveLength(1);
    expect(s.seen[0]?.body).toBe('{"qty":1}');
  });

  it('retries POST when opted in, client-wide or per call', async () => {
    const s = await server();
    s.script(json(503, {}), json(503, {}));
    const api = client({ baseUrl: s.url, retry: { retries: 3, retryPost: true, ...FAST } });
    await expect(api.post('/orders', { json: { qty: 1 } })).resolves.toEqual({ ok: true });
    expect(s.seen.map((r) => r.body)).toEqual(['{"qty":1}', '{"qty":1}', '{"qty":1}']);

    s.script(json(503, {}));
    const plain = client({ baseUrl: s.url, retry: FAST });
    await expect(plain.post('/orders', { json: {}, retry: { retryPost: true } })).resolves.toEqual({ ok: true });
  });

  it('retries POST that carries an Idempotency-Key', async () => {
    const s = await server();
    s.script(json(503, {}));
    const api = client({ baseUrl: s.url, retry: FAST });
    await expect(api.post('/pay', { json: { cents: 5 }, headers: { 'Idempotency-Key': 'k-1' } })).resolves.toEqual({
      ok: true,
    });
    expect(s.seen).toHaveLength(2);
    expect(s.seen[1]?.headers['idempotency-key']).toBe('k-1');
  });

  it('retry: false and per-call statusCodes/methods change the decision', async () => {
    const s = await server();
    s.setDefault(json(500, {}));
    const none = client({ baseUrl: s.url, retry: false });
    await expect(none.get('/x')).rejects.toMatchObject({ status: 500 });
    expect(s.seen).toHaveLength(1);
    const api = client({ baseUrl: s.url, retry: FAST });
    await expect(api.get('/x', { retry: { statusCodes: [502] } })).rejects.toMatchObject({ status: 500 });
    expect(s.seen).toHaveLength(2);
    await expect(api.get('/x', { retry: { retries: 1, methods: ['POST'] } })).rejects.toMatchObject({ status: 500 });
    expect(s.seen).toHaveLength(3);
  });

  it('retries a GET whose connection is destroyed before any response', async () => {
    const s = await server();
    s.script((req) => req.socket.destroy());
    const api = client({ baseUrl: s.url, retry: FAST });
    await expect(api.get('/x')).resolves.toEqual({ ok: true });
    expect(s.seen).toHaveLength(2);
  });

  it('fails with the transport error when the server refuses connections', async () => {
    const s = await startServer();
    const url = s.url;
    await s.close();
    const api = client({ baseUrl: url, retry: { retries: 1, ...FAST } });
    await expect(api.get('/x')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(api.stats()).toMatchObject({ attempts: 2, retries: 1, failed: 1 });
  });

  it('returns the last response instead of throwing with throwHttpErrors: false', async () => {
    const s = await server();
    s.setDefault(json(503, { busy: true }));
    const api = client({ baseUrl: s.url, retry: { retries: 1, ...FAST } });
    await expect(api.request('GET', '/x', { throwHttpErrors: false })).resolves.toMatchObject({
      status: 503,
      data: { busy: true },
    });
    expect(s.seen).toHaveLength(2);
  });
});

describe('server feedback and the shared limiter', () => {
  it('429 with Retry-After: 1 — the retry and a second caller sharing the limiter both wait ≥ 1 s', async () => {
    const clock = new ManualClock();
    const s = await server();
    const arrivals: Array<{ url: string; at: number }> = [];
    s.setDefault((req, res) => {
      arrivals.push({ url: req.url ?? '', at: clock.now() });
      json(200, { ok: true })(req, res, '');
    });
    s.script((req, res) => {
      arrivals.push({ url: req.url ?? '', at: clock.now() });
      json(429, { slow: 'down' }, { 'retry-after': '1' })(req, res, '');
    });
    const shared = limiter(clock);
    const opts = {
      baseUrl: s.url,
      clock,
      rateLimiter: shared,
      retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 },
      attemptTimeoutMs: 600_000,
      timeoutMs: 900_000,
    };
    const a = client(opts);
    const b = client(opts);
    const first = a.get('/first');
    await until(() => shared.stats().penalties === 1, 'the 429 to be fed back');
    const throttledAt = clock.now();
    expect(shared.stats().pausedForMs).toBe(1000);
    const second = b.get('/second');
    await drive(clock, Promise.all([first, second]));
    expect(arrivals.map((r) => r.url).sort()).toEqual(['/first', '/first', '/second']);
    const later = arrivals.slice(1);
    for (const arrival of later) expect(arrival.at - throttledAt).toBeGreaterThanOrEqual(1000);
    // Every attempt, the retry included, took a slot from the limiter, and gave it back.
    expect(shared.stats()).toMatchObject({ started: 3, done: 3, running: 0 });
  });

  it('honours an HTTP-date Retry-After the same way', async () => {
    const clock = new ManualClock(Date.parse('2026-01-15T12:00:00Z'));
    const s = await server();
    const arrivals: number[] = [];
    s.setDefault((req, res) => {
      arrivals.push(clock.now());
      json(200, {})(req, res, '');
    });
    s.script((req, res) => {
      arrivals.push(clock.now());
      json(503, {}, { 'retry-after': 'Thu, 15 Jan 2026 12:00:02 GMT' })(req, res, '');
    });
    const api = client({ baseUrl: s.url, clock, retry: FAST, attemptTimeoutMs: 600_000, timeoutMs: 900_000 });
    await drive(clock, api.get('/x'));
    expect(arrivals).toHaveLength(2);
    expect((arrivals[1] as number) - Date.parse('2026-01-15T12:00:02Z')).toBeGreaterThanOrEqual(0);
  });

  it('fails at once with RateLimitError when Retry-After exceeds the remaining budget', async () => {
    const clock = new ManualClock();
    const s = await server();
    s.script(json(429, { quota: 'gone' }, { 'retry-after': '120' }));
    const shared = limiter(clock);
    const api = client({ baseUrl: s.url, clock, rateLimiter: shared, timeoutMs: 5000, retry: FAST });
    const error = await api.get('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfterMs).toBe(120_000);
    expect((error as RateLimitError).cause).toBeInstanceOf(HttpError);
    expect(s.seen).toHaveLength(1);
    expect(shared.stats().pausedForMs).toBe(120_000);
  });

  it('a Retry-After of hundreds of digits pauses the limiter (clamped), not ConfigError from penalize', async () => {
    const clock = new ManualClock();
    const s = await server();
    const huge = '9'.repeat(300);
    for (const header of ['retry-after', 'retry-after-ms']) {
      s.script(json(429, {}, { [header]: huge }));
      const shared = limiter(clock);
      const api = client({ baseUrl: s.url, clock, rateLimiter: shared, timeoutMs: 5000, retry: FAST });
      const error = await api.get('/x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RateLimitError);
      expect((error as RateLimitError).retryAfterMs).toBe(2_147_483_647);
      expect(shared.stats().pausedForMs).toBe(2_147_483_647);
    }
  });

  it('a 429 the limiter let through slows the shared limiter down (AIMD); a 503 does not', async () => {
    const clock = new ManualClock();
    const s = await server();
    s.script(json(503, {}, { 'retry-after': '0' }), json(429, {}, { 'retry-after': '0' }));
    const shared = limiter(clock);
    const api = client({ baseUrl: s.url, clock, rateLimiter: shared, retry: false });
    await expect(api.get('/x')).rejects.toMatchObject({ status: 503 });
    expect(shared.stats().rateFactor).toBe(1);
    await expect(api.get('/x')).rejects.toMatchObject({ status: 429 });
    expect(shared.stats().rateFactor).toBe(0.8);
  });

  it('a garbage HTTP-date in Retry-After is no date: the 429 still pauses by backoff', async () => {
    const clock = new ManualClock();
    const s = await server();
    s.script(json(429, {}, { 'retry-after': 'June 1' }));
    const shared = limiter(clock);
    const api = client({ baseUrl: s.url, clock, rateLimiter: shared, timeoutMs: 5000, retry: false });
    const error = (await api.get('/x').catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(429);
    expect(error.retryAfterMs).toBeUndefined(); // Date.parse read 'June 1' as 2001: a wait of 0
    expect(shared.stats().pausedForMs).toBeGreaterThan(0);
  });

  it('RateLimit r=0 on an ordinary response holds the next call until the reset', async () => {
    const clock = new ManualClock();
    const s = await server();
    const arrivals: number[] = [];
    s.setDefault((req, res) => {
      arrivals.push(clock.now());
      json(200, {}, { ratelimit: '"default";r=0;t=30', 'ratelimit-policy': '"default";q=10;w=60' })(req, res, '');
    });
    const shared = limiter(clock);
    const api = client({ baseUrl: s.url, clock, rateLimiter: shared, attemptTimeoutMs: 600_000, timeoutMs: 900_000 });
    await api.get('/x');
    expect(shared.stats().penalties).toBe(0); // told, not punished
    await drive(clock, api.get('/y'), 1000);
    expect((arrivals[1] as number) - (arrivals[0] as number)).toBeGreaterThanOrEqual(30_000);
  });

  it('pauses a limiter without updateRemaining when the quota is exhausted', async () => {
    const clock = new ManualClock();
    const s = await server();
    s.setDefault(json(200, {}, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(clock.now() / 1000 + 9) }));
    const penalties: number[] = [];
    const limiter = {
      acquire: async () => () => {},
      penalize: (ms: number) => penalties.push(ms),
    };
    const api = client({ baseUrl: s.url, clock, rateLimiter: limiter });
    await api.get('/x');
    expect(penalties).toEqual([9000]);
  });

  it('a 429 without Retry-After but with RateLimit r=0 waits for the reset', async () => {
    const clock = new ManualClock();
    const s = await server();
    const arrivals: number[] = [];
    s.setDefault((req, res) => {
      arrivals.push(clock.now());
      json(200, {})(req, res, '');
    });
    s.script((req, res) => {
      arrivals.push(clock.now());
      json(429, {}, { ratelimit: '"d";r=0;t=3' })(req, res, '');
    });
    const shared = limiter(clock);
    const api = client({
      baseUrl: s.url,
      clock,
      rateLimiter: shared,
      retry: FAST,
      attemptTimeoutMs: 600_000,
      timeoutMs: 900_000,
    });
    const pending = api.get('/x');
    await until(() => shared.stats().penalties === 1, 'the 429');
    expect(shared.stats().pausedForMs).toBe(3000);
    await drive(clock, pending, 200);
    expect((arrivals[1] as number) - (arrivals[0] as number)).toBeGreaterThanOrEqual(3000);
  });
});

describe('timeouts', () => {
  it('total timeoutMs cuts a retry loop short with TimeoutError', async () => {
    const s = await server();
    s.setDefault(json(503, {}));
    const api = client({ baseUrl: s.url, timeoutMs: 250, retry: { retries: 1000, baseDelayMs: 20, maxDelayMs: 40 } });
    const error = await api.get('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(250);
    expect(s.seen.length).toBeGreaterThanOrEqual(1);
    expect(s.seen.length).toBeLessThan(1000);
    expect(api.stats().failed).toBe(1);
  });

  it('an attempt timeout on a server that never answers closes the socket, and is retried', async () => {
    const s = await server();
    s.setDefault(hang);
    const api = client({ baseUrl: s.url, attemptTimeoutMs: 60, timeoutMs: 10_000, retry: { retries: 1, ...FAST } });
    const error = await api.get('/slow').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('attempt 2 timed out after attemptTimeoutMs 60');
    expect(s.seen).toHaveLength(2);
    await s.waitForSocketClose(2); // the server saw both sockets go
    expect(api.stats()).toMatchObject({ timeouts: 2, attempts: 2, inFlight: 0 });
  });

  it('a total timeout shorter than the attempt timeout aborts the socket too', async () => {
    const s = await server();
    s.setDefault(hang);
    const api = client({ baseUrl: s.url, attemptTimeoutMs: 60_000, timeoutMs: 80 });
    const error = await api.get('/slow').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('timed out after timeoutMs 80');
    await s.waitForSocketClose(1);
    expect(s.seen).toHaveLength(1); // the total budget is spent: no retry
  });

  it('leaves no socket handles behind after close()', async () => {
    const tcpHandles = () => process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length;
    const before = tcpHandles();
    const s = await startServer(hang);
    const api = new APIClient({ baseUrl: s.url, attemptTimeoutMs: 50, retry: false });
    s.script(json(200, { warm: true }));
    await api.get('/warm'); // one keep-alive socket stays open in the pool
    await expect(api.get('/hang')).rejects.toBeInstanceOf(TimeoutError);
    await s.waitForSocketClose(1);
    await api.close();
    await s.close();
    await until(() => tcpHandles() === before, 'sockets to close');
    expect(tcpHandles()).toBe(before);
  });

  it('the caller signal aborts the attempt and its socket with the signal reason', async () => {
    const s = await server();
    s.setDefault(hang);
    const api = client({ baseUrl: s.url });
    const controller = new AbortController();
    const pending = api.get('/slow', { signal: controller.signal });
    await until(() => s.seen.length === 1, 'the request to arrive');
    const reason = new Error('user went away');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await s.waitForSocketClose(1);
    expect(api.stats()).toMatchObject({ retries: 0, inFlight: 0 });
  });

  it('a signal aborted during the retry wait stops the loop', async () => {
    const clock = new ManualClock();
    const s = await server();
    s.setDefault(json(503, {}, { 'retry-after': '10' }));
    const api = client({ baseUrl: s.url, clock, retry: FAST, timeoutMs: 60_000 });
    const controller = new AbortController();
    const pending = api.get('/x', { signal: controller.signal });
    await until(() => api.stats().retries === 1, 'the retry to be scheduled');
    controller.abort(new Error('cancelled'));
    await expect(pending).rejects.toThrow('cancelled');
    expect(s.seen).toHaveLength(1);
  });

  it('a total timeout while waiting for the limiter fails on time and leaves the line', async () => {
    const s = await server();
    const tight = new RateLimiter({ limit: 1, intervalMs: 60_000 });
    open.unshift(tight);
    const api = client({ baseUrl: s.url, rateLimiter: tight, timeoutMs: 100 });
    await api.get('/first');
    const error = await api.get('/second').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain('timed out after timeoutMs 100');
    await until(() => tight.stats().queued === 0, 'the waiter to leave the line');
    expect(tight.stats()).toMatchObject({ started: 1, aborted: 1, running: 0 });
    expect(s.seen).toHaveLength(1);
  });

  it('a slot granted after the call gave up is handed straight back', async () => {
    const s = await server();
    let grant: ((release: () => void) => void) | undefined;
    let released = 0;
    // A limiter that ignores signals (allowed by the structural interface): the grant arrives too late.
    const deaf = {
      acquire: () => new Promise<() => void>((resolve) => (grant = resolve)),
      penalize: () => {},
    };
    const api = client({ baseUrl: s.url, rateLimiter: deaf, timeoutMs: 30 });
    await expect(api.get('/x')).rejects.toBeInstanceOf(TimeoutError);
    grant?.(() => released++);
    await until(() => released === 1, 'the late slot to be released');
    expect(s.seen).toHaveLength(0);
  });

  it('the caller signal pulls a call out of the limiter line', async () => {
    const s = await server();
    const tight = new RateLimiter({ limit: 1, intervalMs: 60_000 });
    open.unshift(tight);
    const api = client({ baseUrl: s.url, rateLimiter: tight });
    await api.get('/first');
    const controller = new AbortController();
    const pending = api.get('/second', { signal: controller.signal });
    await until(() => tight.stats().queued === 1, 'the call to queue');
    controller.abort(new Error('no longer needed'));
    await expect(pending).rejects.toThrow('no longer needed');
    expect(tight.stats()).toMatchObject({ queued: 0, aborted: 1, started: 1 });
  });

  it('a request queued behind busy connections times out on time, not when a socket frees up', async () => {
    const s = await server();
    s.setDefault(hang);
    const api = client({ baseUrl: s.url, connections: 1, retry: false });
    const blocker = new AbortController();
    const first = api.get('/blocker', { signal: blocker.signal, attemptTimeoutMs: 60_000 });
    await until(() => s.seen.length === 1, 'the first request');
    await expect(api.get('/queued', { attemptTimeoutMs: 50 })).rejects.toBeInstanceOf(TimeoutError);
    expect(s.seen).toHaveLength(1); // never reached the server
    blocker.abort(new Error('done'));
    await expect(first).rejects.toThrow('done');
  });

  it('under a chaotic upstream every slot is given back and every call settles with a typed outcome', async () => {
    const s = await server();
    let n = 0;
    s.setDefault((req, res) => {
      const pick = n++ % 5;
      if (pick === 0) return json(200, { ok: true })(req, res, '');
      if (pick === 1) return json(503, {})(req, res, '');
      if (pick === 2) return json(429, {}, { 'retry-after': '0' })(req, res, '');
      if (pick === 3) return req.socket.destroy();
      // pick 4: never answers
    });
    const shared = new RateLimiter({ limit: 100_000, intervalMs: 1000, maxConcurrent: 3 });
    open.unshift(shared);
    const api = client({
      baseUrl: s.url,
      rateLimiter: shared,
      maxConcurrent: 5,
      // Budgets wide enough that a loaded machine still sees some calls through (at 40/400 ms, 1 run in 5
      // timed every call out at load 27); what the test checks does not depend on them.
      attemptTimeoutMs: 100,
      timeoutMs: 3_000,
      retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 },
      circuitBreaker: { failureThreshold: 1000, halfOpenAfterMs: 10 },
    });
    const controllers = Array.from({ length: 120 }, () => new AbortController());
    const calls = controllers.map((controller, i) => api.get(`/chaos/${i}`, { signal: controller.signal }));
    setTimeout(() => {
      for (let i = 0; i < controllers.length; i += 7) controllers[i]?.abort(new Error('caller gave up'));
    }, 30);
    const outcomes = await Promise.allSettled(calls);
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') expect(outcome.value).toEqual({ ok: true });
      else
        expect(outcome.reason).toSatisfy(
          (e: unknown) =>
            // the 503s and 429s, once the retries ran out
            (e instanceof HttpError && (e.status === 503 || e.status === 429)) ||
            e instanceof TimeoutError ||
            (e as Error).message === 'caller gave up' ||
            // the destroyed sockets, once the retries ran out (undici's socket error)
            ['UND_ERR_SOCKET', 'ECONNRESET'].includes((e as { code?: string }).code ?? ''),
        );
    }
    expect(outcomes.some((o) => o.status === 'fulfilled')).toBe(true);
    expect(api.stats()).toMatchObject({ inFlight: 0, queued: 0 });
    expect(shared.stats()).toMatchObject({ running: 0, queued: 0 });
    expect(shared.stats().started).toBe(shared.stats().done);
  });
});
