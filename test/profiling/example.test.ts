import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('examples/profiling', () => {
  it('request-profiling.ts reports N+1 once per request, the slow query and a Prometheus line', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/profiling/request-profiling.ts'], {
      timeout: 30_000,
    });
    const lines = stdout.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('N+1 in "GET /books"'))).toHaveLength(3);
    expect(stdout).toContain('slow: db.query took');
    expect(stdout).toContain('(scope GET /report)');
    expect(stdout).toContain('db.query: count=28 errors=0 p50<=p99: true');
    expect(stdout).toContain('GET /books: runs=3 queries per request=9 nPlusOne=3');
    expect(stdout).toContain(
      'prometheus: hotpath_operation_duration_seconds_count{service="bookshop",name="db.query"} 28',
    );
  });
});
