/**
 * How long a GET response may be kept in the client's response cache, from `Cache-Control` and `Age`
 * (RFC 9111 as it applies to a private cache).
 * @module
 */

/**
 * TTL in ms for storing a response: 0 when it must not be stored (`no-store`, `no-cache` — we do not
 * revalidate — or `max-age=0`); `max-age` minus `Age` when the server set one, capped by `maxTtlMs`;
 * `maxTtlMs` when the server said nothing.
 */
export function responseTtlMs(headers: Record<string, string | string[] | undefined>, maxTtlMs: number): number {
  const field = headers['cache-control'];
  if (field === undefined) return maxTtlMs;
  const text = (typeof field === 'string' ? field : field.join(',')).toLowerCase();
  let maxAgeSeconds: number | undefined;
  for (const part of text.split(',')) {
    const directive = part.trim();
    if (directive === 'no-store' || directive === 'no-cache') return 0;
    if (directive.startsWith('max-age=')) {
      const seconds = Number(directive.slice(8).replace(/"/g, ''));
      if (!Number.isFinite(seconds) || seconds < 0) return 0; // malformed: treat as stale (RFC 9111 §4.2.1)
      maxAgeSeconds = seconds;
    }
  }
  if (maxAgeSeconds === undefined) return maxTtlMs;
  const ageField = headers.age;
  const ageSeconds = Number(typeof ageField === 'string' ? ageField : (ageField?.[0] ?? 0));
  const freshMs = (maxAgeSeconds - (Number.isFinite(ageSeconds) && ageSeconds > 0 ? ageSeconds : 0)) * 1000;
  return Math.max(0, Math.min(maxTtlMs, freshMs));
}
