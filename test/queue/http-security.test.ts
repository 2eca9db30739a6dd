/**
 * Issue 19: the job endpoints under attack from a second client over real HTTP. Each attack is made by
 * client "mallory" against jobs of client "alice" (the owner comes from an `x-user` header here; an app
 * takes it from its auth layer).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { QueueManager, type QueueManagerOptions } from 'hotpath/queue';
import { afterEach, describe, expect, it } from 'vitest';

describe('job endpoints: hostile clients', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const userOf = (req: { headers: Record<string, string | string[] | undefined> }) => {
    const user = req.headers['x-user'];
    return typeof user === 'string' ? user : undefined;
  };

  async function setup(http: QueueManagerOptions['http'] = {}) {
    const jobs = new QueueManager({ http: { owner: userOf, ...http } });
    cleanups.push(() => jobs.close());
    jobs.register('report', async () => 'done');
    // Not started: jobs stay queued, so every attack sees them in place.
    const server: Server = createServer(async (req, res) => {
      if (!(await jobs.http.handle(req, res))) {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const as = (user: string | undefined) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (user !== undefined) headers['x-user'] = user;
      return {
        submit: (body: unknown) =>
          fetch(`${base}/jobs`, {
            method: 'POST',
            headers,
            body: typeof body === 'string' ? body : JSON.stringify(body),
          }),
        get: (id: string) => fetch(`${base}/jobs/${id}`, { headers }),
        cancel: (id: string) => fetch(`${base}/jobs/${id}`, { method: 'DELETE', headers }),
      };
    };
    const stored = async () => (await jobs.queue.list()).items.length;
    return { jobs, alice: as('alice'), mallory: as('mallory'), anonymous: as(undefined), stored };
  }

  it("reading or cancelling another client's job answers exactly like an unknown id (404)", async () => {
    const { jobs, alice, mallory } = await setup();
    const { id } = (await (await alice.submit({ type: 'report', data: { secret: 42 } })).json()) as { id: string };
    expect((await alice.get(id)).status).toBe(200);

    const unknown = await mallory.get('0190aaaa-0000-7000-8000-000000000000');
    const stolen = await mallory.get(id);
    expect(stolen.status).toBe(404);
    expect(await stolen.json()).toEqual(await unknown.json());
    const cancelled = await mallory.cancel(id);
    expect(cancelled.status).toBe(404);
    expect((await jobs.queue.get(id))?.status).toBe('queued'); // untouched
    expect((await jobs.queue.get(id))?.owner).toBe('alice');
  });

  it("a client cannot reach another client's job through a shared dedupe key", async () => {
    const { alice, mallory } = await setup({ clientOptions: { key: { maxLength: 64 } } });
    const first = (await (await alice.submit({ type: 'report', data: 1, key: 'monthly' })).json()) as { id: string };
    const again = (await (await alice.submit({ type: 'report', data: 1, key: 'monthly' })).json()) as { id: string };
    expect(again.id).toBe(first.id); // dedupe still works per owner
    const other = (await (await mallory.submit({ type: 'report', data: 1, key: 'monthly' })).json()) as { id: string };
    expect(other.id).not.toBe(first.id);
    expect((await mallory.get(first.id)).status).toBe(404);
  });

  it('job options in a body are refused unless clientOptions names them, and bounded when it does', async () => {
    const open = await setup();
    for (const option of [{ priority: 1000 }, { attempts: 1000 }, { timeoutMs: 1 }, { delayMs: 0 }, { key: 'k' }]) {
      const response = await open.mallory.submit({ type: 'report', data: 1, ...option });
      expect(response.status, JSON.stringify(option)).toBe(400);
    }
    expect(await open.stored()).toBe(0);

    const bounded = await setup({
      clientOptions: {
        priority: { min: 0, max: 5 },
        attempts: { max: 3 },
        timeoutMs: { max: 60_000 },
        delayMs: { max: 60_000 },
        runAt: { maxAheadMs: 60_000 },
      },
    });
    const tooMuch = [
      { priority: 6 },
      { priority: -1 },
      { priority: 2.5 },
      { attempts: 4 },
      { timeoutMs: 60_001 },
      { delayMs: 86_400_000 },
      { runAt: Date.now() + 86_400_000 },
      { priority: '5' },
    ];
    for (const option of tooMuch) {
      const response = await bounded.mallory.submit({ type: 'report', data: 1, ...option });
      expect(response.status, JSON.stringify(option)).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ERR_OPTION');
    }
    expect(await bounded.stored()).toBe(0);
    const fine = await bounded.alice.submit({ type: 'report', data: 1, priority: 5, attempts: 3 });
    expect(fine.status).toBe(202);
    const { id } = (await fine.json()) as { id: string };
    expect(await bounded.jobs.queue.get(id)).toMatchObject({ priority: 5, maxAttempts: 3 });
  });

  it('a request without an owner is refused (401)', async () => {
    const { anonymous, stored } = await setup();
    expect((await anonymous.submit({ type: 'report', data: 1 })).status).toBe(401);
    expect((await anonymous.get('0190aaaa-0000-7000-8000-000000000000')).status).toBe(401);
    expect(await stored()).toBe(0);
  });

  it('hostile bodies are refused with a typed 4xx and enqueue nothing', async () => {
    const { mallory, stored } = await setup();
    const deep = `{"type":"report","data":${'['.repeat(50_000)}${']'.repeat(50_000)}}`;
    const attacks: Array<[string, string, number, string]> = [
      ['deep nesting', deep, 400, 'ERR_BODY'],
      ['nesting just past the limit', JSON.stringify({ type: 'report', data: nested(32) }), 400, 'ERR_BODY'],
      [
        'a 900 KB string',
        JSON.stringify({ type: 'report', data: { note: 'x'.repeat(900_000) } }),
        413,
        'ERR_BODY_TOO_LARGE',
      ],
      [
        'too many values',
        JSON.stringify({ type: 'report', data: new Array(100_001).fill(0) }),
        413,
        'ERR_BODY_TOO_LARGE',
      ],
      ['__proto__', '{"type":"report","data":{"__proto__":{"isAdmin":true}}}', 400, 'ERR_BODY'],
      ['constructor', '{"type":"report","data":{"a":{"constructor":{"prototype":{"x":1}}}}}', 400, 'ERR_BODY'],
      ['__proto__ at the top', '{"type":"report","data":1,"__proto__":{"isAdmin":true}}', 400, 'ERR_BODY'],
    ];
    for (const [name, body, status, code] of attacks) {
      const response = await mallory.submit(body);
      expect(response.status, name).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code, name).toBe(code);
    }
    expect(await stored()).toBe(0);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    // Just within the limits is fine.
    expect((await mallory.submit({ type: 'report', data: nested(30) })).status).toBe(202);
  });

  it('a framework-parsed hostile body is refused too (the walk is iterative and capped)', async () => {
    const jobs = new QueueManager({ http: { owner: userOf } });
    cleanups.push(() => jobs.close());
    jobs.register('report', async () => 'done');
    let data: unknown = 0;
    for (let i = 0; i < 200_000; i++) data = [data];
    const res = fakeResponse();
    const id = await jobs.http.submit({ headers: { 'x-user': 'mallory' }, body: { type: 'report', data } }, res);
    expect(id).toBeUndefined();
    expect(res.statusCode).toBe(400);
    expect((await jobs.queue.list()).items).toEqual([]);
  });

  it('submit hands the job id back, accepted(id) builds the 202 body, and authorize can widen access', async () => {
    const admins = new Set(['root']);
    const jobs = new QueueManager({
      http: {
        owner: userOf,
        authorize: (req, _action, job) => admins.has(userOf(req) ?? '') || job.owner === userOf(req),
      },
    });
    cleanups.push(() => jobs.close());
    jobs.register('report', async () => 'done');
    const res = fakeResponse();
    const id = await jobs.http.submit({ headers: { 'x-user': 'alice' }, body: { type: 'report', data: 1 } }, res);
    expect(id).toEqual(expect.any(String));
    expect(res.statusCode).toBe(202);
    expect(JSON.parse(res.body)).toEqual(jobs.http.accepted(id as string));
    expect(jobs.http.accepted('abc')).toEqual({ id: 'abc', state: 'queued', statusUrl: '/jobs/abc' });
    const asRoot = fakeResponse();
    await jobs.http.status({ headers: { 'x-user': 'root' }, params: { id: id as string } }, asRoot);
    expect(asRoot.statusCode).toBe(200);
    const asBob = fakeResponse();
    await jobs.http.status({ headers: { 'x-user': 'bob' }, params: { id: id as string } }, asBob);
    expect(asBob.statusCode).toBe(404);
  });
});

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}

function fakeResponse() {
  const res = {
    statusCode: 0,
    body: '',
    headers: {} as Record<string, string>,
    setHeader(name: string, value: string) {
      res.headers[name] = value;
    },
    end(body?: string) {
      res.body = body ?? '';
    },
  };
  return res;
}
