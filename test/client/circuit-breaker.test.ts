import { APIClient, CircuitBreaker, type CircuitJudge } from 'hotpath/client';
import { CircuitOpenError, ConfigError, HttpError, ManualClock } from 'hotpath/core';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from './drive.js';
import { type Handler, json, type ScriptedServer, startServer } from './scripted-server.js';

/** Runs a failing call through the breaker; returns what it rejected with. */
const fail = (breaker: CircuitBreaker): Promise<unknown> =>
  breaker.execute(() => Promise.reject(new Error('upstream down'))).catch((error: unknown) => error);
const succeed = (breaker: CircuitBreaker): Promise<unknown> => breaker.execute(() => 'ok');

/** A call held open until `finish` is called; `started` tells whether the breaker let it run. */
function hold(breaker: CircuitBreaker, signal?: AbortSignal) {
  let finish!: (outcome: 'ok' | 'fail') => void;
  let started = false;
  const result = breaker
    .execute(
      () =>
        new Promise<string>((resolve, reject) => {
          started = true;
          finish = (outcome) => (outcome === 'ok' ? resolve('ok') : reject(new Error('probe failed')));
        }),
      signal,
    )
    .catch((error: unknown) => error);
  return { result, finish: (outcome: 'ok' | 'fail') => finish(outcome), isStarted: () => started };
}

describe('CircuitBreaker', () => {
  it('opens after failureThreshold consecutive failures, half-opens, and closes on a good probe', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, halfOpenAfterMs: 1000, clock });
    for (let i = 0; i < 2; i++) await fail(breaker);
    await succeed(breaker); // a success resets the count
    for (let i = 0; i < 3; i++) await fail(breaker);
    expect(breaker.state).toBe('open');
    await expect(succeed(breaker)).rejects.toThrow(CircuitOpenError);
    await clock.advance(999);
    const early = (await succeed(breaker).catch((error: unknown) => error)) as CircuitOpenError | undefined;
    expect(early?.retryAfterMs).toBe(1);
    await clock.advance(1);
    expect(breaker.state).toBe('half-open');
    const probe = hold(breaker);
    expect(probe.isStarted()).toBe(true);
    await expect(succeed(breaker)).rejects.toThrow(/probe is still running/); // exactly one probe
    probe.finish('ok');
    await expect(probe.result).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    // Closed: calls run side by side, none of them a probe.
    const first = hold(breaker);
    const second = hold(breaker);
    expect(first.isStarted() && second.isStarted()).toBe(true);
    first.finish('ok');
    second.finish('ok');
    await Promise.all([first.result, second.result]);
    expect(breaker.stats()).toMatchObject({ state: 0, opened: 1, rejected: 3, consecutiveFailures: 0 });
  });

  it('a failed probe re-opens for another full wait; a cancelled probe frees the slot', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, halfOpenAfterMs: 500, clock });
    await fail(breaker);
    await clock.advance(500);
    const controller = new AbortController();
    const cancelled = breaker.execute(
      (signal) =>
        new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true })),
      controller.signal,
    );
    controller.abort(new Error('caller gave up')); // no verdict
    await expect(cancelled).rejects.toThrow('caller gave up');
    expect(breaker.state).toBe('half-open');
    const probe = hold(breaker);
    expect(probe.isStarted()).toBe(true);
    probe.finish('fail');
    await probe.result;
    expect(breaker.state).toBe('open');
    await clock.advance(499);
    await expect(succeed(breaker)).rejects.toThrow(CircuitOpenError);
    await clock.advance(1);
    const next = hold(breaker);
    expect(next.isStarted()).toBe(true);
    await expect(succeed(breaker)).rejects.toThrow(/probe is still running/); // it is the probe
    next.finish('ok');
    await next.result;
  });

  it('a judge decides what an outcome says; an aborted signal rejects without running fn', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, halfOpenAfterMs: 60_000 });
    const judge: CircuitJudge<number> = {
      result: (status) => (status >= 500 ? 'failure' : 'success'),
      error: () => 'ignore',
    };
    await breaker.execute(() => Promise.reject(new Error('not sent')), undefined, judge).catch(() => {});
    expect(breaker.state).toBe('closed');
    await breaker.execute(() => 200, undefined, judge);
    expect(breaker.state).toBe('closed');
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    let ran = false;
    await expect(breaker.execute(() => (ran = true), controller.signal)).rejects.toThrow('gone');
    expect(ran).toBe(false);
    await breaker.execute(() => 503, undefined, judge);
    expect(breaker.state).toBe('open');
  });

  it('reports every transition to onStateChange', async () => {
    const clock = new ManualClock();
    const changes: string[] = [];
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      halfOpenAfterMs: 10,
      clock,
      onStateChange: (state, previous) => changes.push(`${previous}->${state}`),
    });
    await fail(breaker);
    await clock.advance(10);
    await fail(breaker);
    await clock.advance(10);
    await succeed(breaker);
    expect(changes).toEqual([
      'closed->open',
      'open->half-open',
      'half-open->open',
      'open->half-open',
      'half-open->closed',
    ]);
  });

  it('validates its options', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(ConfigError);
    expect(() => new CircuitBreaker({ halfOpenAfterMs: -1 })).toThrow(/halfOpenAfterMs/);
    expect(() => new CircuitBreaker({ bogus: 1 } as never)).toThrow(/bogus/);
  });
});

describe('APIClient with a circuit breaker', () => {
  let s: ScriptedServer;
  let api: APIClient | undefined;
  afterEach(async () => {
    await api?.close();
    await s.close();
  });

  it('opens after N failing calls, fails fast without touching the server, probes once, closes', async () => {
    const clock = new ManualClock();
    s = await startServer(json(500, { down: true }));
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (_: object, msg?: string) => warnings.push(msg ?? ''), error() {} };
    api = new APIClient({
      baseUrl: s.url,
      clock,
      retry: false,
      logger,
      circuitBreaker: { failureThreshold: 2, halfOpenAfterMs: 1000 },
    });
    await expect(api.get('/x')).rejects.toBeInstanceOf(HttpError);
    await expect(api.get('/x')).rejects.toBeInstanceOf(HttpError);
    expect(warnings).toEqual(['APIClient: circuit open']);
    const fast = await api.get('/x').catch((e: unknown) => e);
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect((fast as CircuitOpenError).retryAfterMs).toBe(1000);
    expect(s.seen).toHaveLength(2);
    expect(api.stats()).toMatchObject({ circuitState: 1, circuitRejected: 1 });

    await clock.advance(1000);
    let answer: (() => void) | undefined;
    const held: Handler = (req, res) => {
      answer = () => json(200, { back: true })(req, res, '');
    };
    s.script(held);
    const probe = api.get('/x');
    await until(() => answer !== undefined, 'the probe to arrive');
    await expect(api.get('/x')).rejects.toBeInstanceOf(CircuitOpenError); // one probe only
    answer?.();
    await expect(probe).resolves.toEqual({ back: true });
    expect(api.stats().circuitState).toBe(0);
    s.setDefault(json(200, { fine: true }));
    await expect(api.get('/x')).resolves.toEqual({ fine: true });
    expect(s.seen).toHaveLength(4);
  });

  it('stops a retry loop as soon as the circuit opens', async () => {
    s = await startServer(json(503, {}));
    api = new APIClient({
      baseUrl: s.url,
      retry: { retries: 10, baseDelayMs: 1, maxDelayMs: 2 },
      circuitBreaker: { failureThreshold: 3, halfOpenAfterMs: 60_000 },
    });
    await expect(api.get('/x')).rejects.toBeInstanceOf(CircuitOpenError);
    expect(s.seen).toHaveLength(3);
  });

  it('does not count 4xx or 429 as upstream failures, and a shared breaker spans clients', async () => {
    s = await startServer(json(404, {}));
    const breaker = new CircuitBreaker({ failureThreshold: 2, halfOpenAfterMs: 60_000 });
    api = new APIClient({ baseUrl: s.url, retry: false, circuitBreaker: breaker });
    for (let i = 0; i < 3; i++) await expect(api.get('/x')).rejects.toMatchObject({ status: 404 });
    s.setDefault(json(429, {}));
    for (let i = 0; i < 3; i++) await expect(api.get('/x')).rejects.toMatchObject({ status: 429 });
    expect(breaker.state).toBe('closed');
    s.setDefault(json(500, {}));
    const other = new APIClient({ baseUrl: s.url, retry: false, circuitBreaker: breaker });
    await expect(other.get('/x')).rejects.toMatchObject({ status: 500 });
    await expect(api.get('/x')).rejects.toMatchObject({ status: 500 });
    await expect(other.get('/x')).rejects.toBeInstanceOf(CircuitOpenError);
    await other.close();
  });
});
