/**
 * Who is calling: the client address an inbound limiter keys on. The socket's peer address by default;
 * `X-Forwarded-For` / `Forwarded` only when the peer is a configured trusted proxy, walking the chain from
 * the right and stopping at the first address that is not a trusted proxy (everything left of it was
 * written by the client and can be forged). IPv6 clients are grouped by prefix (/56 by default), since one
 * host commonly holds a whole /64 and could otherwise rotate through it for a fresh bucket per request.
 * @module
 */
import { BlockList, isIP, isIPv4 } from 'node:net';
import { ConfigError } from '../core/errors.js';

/** The request members the client resolver reads (Node's `IncomingMessage` fits). */
export interface ClientRequestLike {
  /** Request headers, lower-cased names. */
  readonly headers: Record<string, string | string[] | undefined>;
  /** The connection. */
  readonly socket?: PeerLike | null;
}

/** The connection member the client resolver reads (Node's `Socket` fits). */
export interface PeerLike {
  /** The peer's address: the client, or the nearest proxy; undefined once the socket is destroyed. */
  readonly remoteAddress?: string | undefined;
}

/**
 * Trusted proxies: addresses (`"10.0.0.7"`), CIDR ranges (`"10.0.0.0/8"`, `"fd00::/8"`) and the names
 * `"loopback"` (127.0.0.0/8, ::1), `"private"` (10/8, 172.16/12, 192.168/16, fc00::/7) and `"linklocal"`
 * (169.254/16, fe80::/10); or a function deciding per address.
 */
export type TrustedProxies = readonly string[] | ((address: string) => boolean);

const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

/** Most hops read from a forwarding header; a longer chain is cut (bounded work on hostile headers). */
const MAX_HOPS = 32;
/** Most characters of a forwarding header read. */
const MAX_HEADER_LENGTH = 4096;

/** Resolves the client key of a request. */
export class ClientResolver {
  readonly #isTrusted: ((address: string) => boolean) | undefined;
  readonly #ipv6Prefix: number;

  /** @throws ConfigError for an unparsable proxy entry or an ipv6Prefix outside 1–128. */
  constructor(scope: string, trustedProxies: TrustedProxies | undefined, ipv6Prefix = 56) {
    if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 1 || ipv6Prefix > 128) {
      throw new ConfigError(`${scope}.ipv6Prefix`, `${scope}.ipv6Prefix must be an integer 1–128, got ${ipv6Prefix}`);
    }
    this.#ipv6Prefix = ipv6Prefix;
    if (typeof trustedProxies === 'function') {
      this.#isTrusted = trustedProxies;
    } else if (trustedProxies !== undefined) {
      if (!Array.isArray(trustedProxies)) {
        throw new ConfigError(
          `${scope}.trustedProxies`,
          `${scope}.trustedProxies must be an array of addresses/CIDRs or a function`,
        );
      }
      const list = new BlockList();
      for (const entry of trustedProxies) addTrusted(scope, list, entry);
      this.#isTrusted = (address) => list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
    }
  }

  /**
   * The client's address as a limiter key: IPv4 as is, IPv6 masked to the prefix (`"2001:db8:0:ab00::/56"`),
   * `"unknown"` when the socket has no address (a destroyed connection).
   */
  clientKey(req: ClientRequestLike): string {
    const address = this.clientAddress(req);
    return address === undefined ? 'unknown' : this.#group(address);
  }

  /** The client's address (not grouped): the peer, or the first untrusted hop from the right of the chain. */
  clientAddress(req: ClientRequestLike): string | undefined {
    const peer = normalize(req.socket?.remoteAddress);
    if (peer === undefined || this.#isTrusted === undefined || !this.#isTrusted(peer)) return peer;
    const chain = forwardedChain(req.headers);
    let client = peer;
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = normalize(chain[i]);
      // An entry that is not an address (obfuscated, "unknown", garbage) ends the walk at the last
      // address a trusted proxy vouched for: conservative, and not something a client can rotate.
      if (hop === undefined) break;
      client = hop;
      if (!this.#isTrusted(hop)) break;
    }
    return client;
  }

  #group(address: string): string {
    if (isIPv4(address)) return address;
    const hextets = parseIPv6(address);
    if (hextets === undefined) return address;
    let bits = this.#ipv6Prefix;
    const masked = hextets.map((value) => {
      const keep = Math.max(0, Math.min(16, bits));
      bits -= 16;
      return keep === 0 ? 0 : value & (0xffff << (16 - keep)) & 0xffff;
    });
    return `${masked.map((value) => value.toString(16)).join(':')}/${this.#ipv6Prefix}`;
  }
}

function addTrusted(scope: string, list: BlockList, entry: unknown): void {
  if (typeof entry !== 'string') {
    throw new ConfigError(
      `${scope}.trustedProxies`,
      `${scope}.trustedProxies entries must be strings, got ${typeof entry}`,
    );
  }
  const named = NAMED_RANGES[entry];
  if (named !== undefined) {
    for (const range of named) addTrusted(scope, list, range);
    return;
  }
  const [address = '', prefixText] = entry.split('/');
  const family = isIP(address);
  const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
  if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new ConfigError(
      `${scope}.trustedProxies`,
      `${scope}.trustedProxies: "${entry}" is not an address, a CIDR range or one of loopback, private, linklocal`,
    );
  }
  list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
}

/** The hops of `Forwarded` (its `for=` values) or else `X-Forwarded-For`, left to right, at most MAX_HOPS from the right. */
function forwardedChain(headers: ClientRequestLike['headers']): string[] {
  const forwarded = joined(headers.forwarded);
  if (forwarded !== undefined) {
    const hops: string[] = [];
    for (const element of forwarded.split(',')) {
      const match = /(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)/i.exec(element);
      hops.push(match === null ? '' : stripPort((match[1] as string).replace(/^"|"$/g, '')));
    }
    return hops.slice(-MAX_HOPS);
  }
  const xff = joined(headers['x-forwarded-for']);
  if (xff === undefined) return [];
  return xff
    .split(',')
    .slice(-MAX_HOPS)
    .map((hop) => stripPort(hop.trim()));
}

function joined(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  // Only the right end matters (the walk starts there): keep that end of an oversized header.
  return text.length > MAX_HEADER_LENGTH ? text.slice(-MAX_HEADER_LENGTH) : text;
}

/** `"[2001:db8::1]:4711"` → `2001:db8::1`; `"192.0.2.1:80"` → `192.0.2.1`. */
function stripPort(hop: string): string {
  if (hop.startsWith('[')) return hop.slice(1, hop.indexOf(']') >>> 0);
  const colon = hop.indexOf(':');
  if (colon > 0 && colon === hop.lastIndexOf(':') && hop.includes('.')) return hop.slice(0, colon);
  return hop;
}

/** A valid IP address, IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4, zone id dropped; else undefined. */
function normalize(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  let value = address.trim();
  const zone = value.indexOf('%');
  if (zone >= 0) value = value.slice(0, zone);
  if (value.toLowerCase().startsWith('::ffff:') && isIPv4(value.slice(7))) return value.slice(7);
  return isIP(value) === 0 ? undefined : value.toLowerCase();
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a trailing dotted IPv4 expanded). */
function parseIPv6(address: string): number[] | undefined {
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const parts = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    tail.push(((parts[0] as number) << 8) | (parts[1] as number), ((parts[2] as number) << 8) | (parts[3] as number));
    text = `${text.slice(0, lastColon + 1)}0:0`;
    tail.length = 2;
  }
  const [headText = '', restText] = text.split('::');
  const head = headText === '' ? [] : headText.split(':');
  const rest = restText === undefined ? [] : restText === '' ? [] : restText.split(':');
  const missing = 8 - head.length - rest.length;
  if (restText === undefined && missing !== 0) return undefined;
  const groups = [...head, ...Array.from({ length: Math.max(0, missing) }, () => '0'), ...rest].map((g) =>
    Number.parseInt(g, 16),
  );
  if (tail.length === 2) groups.splice(6, 2, tail[0] as number, tail[1] as number);
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}
