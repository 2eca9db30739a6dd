/** Runs the storage example as a user would and checks what it printed. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('examples/storage/forecasts.ts runs and prints its results', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/storage/forecasts.ts']);
  expect(stdout.trim().split('\n')).toEqual([
    'saved 40 forecasts in one transaction',
    'get Oslo day 0: 3 °C (cache entries: 1)',
    'warm forecasts: 30 in 2 pages; Oslo has 10',
    'by city: Nairobi 10× 24 °C, Lisbon 10× 19 °C, Lima 10× 17 °C, Oslo 10× 3 °C',
    'cities starting with "Li": 20 forecasts',
    'fog over Lima: 10 forecasts updated',
    'second update with the old version: conflict',
    'after update: snow (cache invalidated by the write)',
    'dry run: forecasts 40 → 0, would copy 40',
    'copied: forecasts 40 → 40; counts match: true',
  ]);
});
