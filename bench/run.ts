/**
 * `npm run bench -- <module> [more modules] [--mode]` runs bench/<module>.bench.ts; without arguments, all of them.
 * `--<mode>` flags are left for the benches (`benchMode('ab')` in harness.ts): `npm run bench -- storage --ab`.
 * Run with `node --expose-gc` semantics via tsx (`npm run bench` passes it) so runs start from a collected heap.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace(/\.bench\.ts$/, ''))
  .sort();
const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
console.log(`# hotpath benchmarks — node ${process.version}, ${new Date().toISOString()}`);
for (const name of wanted.length > 0 ? wanted : available) {
  console.log(`\n# ${name}`);
  await import(pathToFileURL(`${dir}${name}.bench.ts`).href);
}
// A bench that leaves a client connection open (an anchor library's socket) must not keep the run alive:
// every bench has printed its tables by now.
process.exit(0);
