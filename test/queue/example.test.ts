/** Runs the queue example as a user would and checks what it reports. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('examples/queue/background-jobs.ts: submit, poll, retry, dead-letter, redrive, cancel', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/queue/background-jobs.ts'], {
    timeout: 60_000,
  });
  expect(stdout).toMatch(/submitted: HTTP 202, status at \/jobs\/[0-9a-f-]{36}/);
  expect(stdout).toMatch(/succeeded: pi ≈ 3\.1 \(progress 200000\/200000\)/);
  expect(stdout).toContain('progress polled while running: yes');
  expect(stdout).toMatch(/failed after retries: .*failed after 2 attempt\(s\): upstream unavailable/);
  expect(stdout).toContain('dead letters: 1');
  expect(stdout).toContain('redriven: report sent');
  expect(stdout).toContain('cancel: HTTP 202');
  expect(stdout).toContain('cancelled: JobCancelledError');
  expect(stdout).toContain('stats: 2 succeeded, 1 cancelled');
});
