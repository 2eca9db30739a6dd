/**
 * Storage example: the seeds' forecast store. Saves forecasts through a StorageManager with a cache,
 * queries an indexed field with keyset pagination, aggregates per city, updates with optimistic
 * concurrency and in bulk, then migrates everything from SQLite into a second store with copyStorage
 * (dry run first).
 *
 * Run: node --import tsx examples/storage/forecasts.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHotpathError } from 'hotpath/core';
import { copyStorage, createStorage, MemoryStorage, StorageManager } from 'hotpath/storage';

interface Forecast {
  city: string;
  day: number;
  tempC: number;
  summary: string;
}

const dir = mkdtempSync(join(tmpdir(), 'hotpath-storage-example-'));
const storage = createStorage(`sqlite://${join(dir, 'forecasts.db')}`);
// Any object with get/set/delete works as the cache (hotpath's Cache, lru-cache, a Map).
const cache = new Map<string, object>();
const manager = new StorageManager(storage, { cache });
const forecasts = manager.collection<Forecast>('forecasts', { indexes: ['city', 'tempC'] });

const cities = ['Oslo', 'Lisbon', 'Nairobi', 'Lima'];
const ids = await forecasts.saveMany(
  Array.from({ length: 40 }, (_, i) => ({
    city: cities[i % cities.length] as string,
    day: Math.floor(i / cities.length),
    tempC: [3, 19, 24, 17][i % cities.length] as number,
    summary: 'clear',
  })),
);
console.log(`saved ${ids.length} forecasts in one transaction`);

const first = ids[0] as string;
await forecasts.get(first); // from SQLite, now cached
const cached = await forecasts.get(first); // from the cache
console.log(`get ${cached?.city} day ${cached?.day}: ${cached?.tempC} °C (cache entries: ${cache.size})`);

// Keyset pagination over an indexed field, warmest first.
let page = await forecasts.find({
  where: { tempC: { gte: 17 } },
  orderBy: { field: 'tempC', direction: 'desc' },
  limit: 15,
});
let pages = 1;
let seen = page.items.length;
while (page.nextCursor) {
  page = await forecasts.find({
    where: { tempC: { gte: 17 } },
    orderBy: { field: 'tempC', direction: 'desc' },
    limit: 15,
    cursor: page.nextCursor,
  });
  pages++;
  seen += page.items.length;
}
console.log(`warm forecasts: ${seen} in ${pages} pages; Oslo has ${await forecasts.count({ city: 'Oslo' })}`);

// Statistics computed by the database (GROUP BY on the city index), warmest first.
const byCity = await forecasts.aggregate({
  groupBy: 'city',
  count: true,
  avg: ['tempC'],
  orderBy: { field: 'avg.tempC', direction: 'desc' },
});
console.log(`by city: ${byCity.map((row) => `${row.group.city} ${row.count}× ${row.avg?.tempC} °C`).join(', ')}`);
console.log(`cities starting with "Li": ${await forecasts.count({ city: { startsWith: 'Li' } })} forecasts`);
// A bulk update is one statement; it also drops the cached documents of the collection.
console.log(`fog over Lima: ${await forecasts.updateMany({ city: 'Lima' }, { summary: 'fog' })} forecasts updated`);

// Optimistic concurrency: update only if nobody wrote since we read.
const current = await forecasts.getWithMeta(first);
await forecasts.update(first, { summary: 'snow' }, { expectedVersion: current?.version });
try {
  await forecasts.update(first, { summary: 'rain' }, { expectedVersion: current?.version });
} catch (error) {
  if (isHotpathError(error, 'ERR_HOTPATH_CONFLICT')) console.log('second update with the old version: conflict');
}
console.log(`after update: ${(await forecasts.get(first))?.summary} (cache invalidated by the write)`);

// Migration: the dry run checks the target and counts, the real run copies in batches; re-running is safe.
const target = new MemoryStorage();
const dry = await copyStorage(storage, target, { dryRun: true });
console.log(
  `dry run: ${dry.collections.map((c) => `${c.collection} ${c.sourceCount} → ${c.targetCount}, would copy ${c.wouldCopy}`).join(', ')}`,
);
const copied = await copyStorage(storage, target, { batchSize: 16 });
console.log(
  `copied: ${copied.collections.map((c) => `${c.collection} ${c.sourceCount} → ${c.targetCount}`).join(', ')}; counts match: ${copied.countsMatch}`,
);

await target.close();
await storage.close();
rmSync(dir, { recursive: true, force: true });
