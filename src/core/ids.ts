/**
 * Sortable unique ids (UUIDv7, RFC 9562): 48-bit millisecond timestamp, then a 12-bit counter that
 * keeps ids made in the same millisecond in creation order, then 62 random bits. Lexicographic order
 * of the strings is creation order within a process and time order across processes.
 * @module
 */
import { randomFillSync } from 'node:crypto';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
// Random bytes are drawn in blocks: one crypto call per 512 ids instead of one per id.
const POOL = new Uint8Array(8 * 512);
let poolOffset = POOL.length;
let lastMs = -1;
let counter = 0;

function randomBytes8(): number {
  if (poolOffset >= POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += 8;
  return at;
}

/**
 * A new UUIDv7 string such as `0190b3c2-7d4e-7000-8a1b-2c3d4e5f6a7b`.
 * @param nowMs - the timestamp to embed (epoch ms), normally `clock.now()`.
 */
export function sortableId(nowMs: number = Date.now()): string {
  let ms = Math.floor(nowMs);
  if (ms <= lastMs) {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // 4,096 ids in one millisecond: borrow the next millisecond so order still holds.
      ms = lastMs + 1;
      counter = 0;
    }
  } else {
    counter = 0;
  }
  lastMs = ms;
  const at = randomBytes8();
  const t = ms.toString(16).padStart(12, '0');
  const randA = (0x7000 | counter).toString(16);
  const variant = HEX[((POOL[at] as number) & 0x3f) | 0x80] as string;
  let tail = '';
  for (let i = 1; i < 8; i++) tail += HEX[POOL[at + i] as number];
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-${randA}-${variant}${tail.slice(0, 2)}-${tail.slice(2)}`;
}
