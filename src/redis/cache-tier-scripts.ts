/**
 * The Lua scripts of {@link RedisCacheTier}. Each runs atomically on one slot: every key of a tier
 * shares its hash tag. User keys and tags reach a script only as KEYS/ARGV values (never spliced into
 * the source), so no key can inject Lua or a key pattern.
 *
 * Layout under a tier's base `B` (which holds the hash tag): `B:v:<key>` value envelope,
 * `B:t:<tag>` set of keys carrying the tag, `B:g:<key>` / `B:tg:<tag>` sequence number of the last
 * invalidation of that key / tag (kept `staleGuardMs`), `B:seq` the tier's invalidation counter,
 * `B:epoch` the sequence number of the last `clear`, `B:l:<key>` the key's load lease.
 *
 * The value envelope is `<expiry, epoch ms, or empty>|<tags as JSON, or empty>\n<payload>`: the expiry
 * is digits only, and JSON escapes newlines, so the first `|` and the next newline always end them. The
 * expiry in the envelope lets a hit be a plain MGET (no PTTL, no script).
 * @module
 */
import { defineScript } from './connection.js';

/** Removes `key` from the tag sets its stored envelope names (Lua helper, spliced into scripts). */
const UNTAG = `
local function untag(base, key, envelope)
  local bar = string.find(envelope, '|', 1, true) or 0
  local nl = string.find(envelope, '\\n', bar + 1, true)
  if nl and nl > bar + 1 then
    for _, tag in ipairs(cjson.decode(string.sub(envelope, bar + 1, nl - 1))) do
      redis.call('SREM', base .. ':t:' .. tag, key)
    end
  end
end
`;

/**
 * Stores an envelope and indexes its tags; a tag set lives as long as its longest-lived member
 * (a value without expiry makes its tag sets persistent). ARGV from `first`: envelope, ttlMs ('' = none).
 */
const STORE = `
local function store(base, key, envelope, ttl, tags)
  local vkey = base .. ':v:' .. key
  local old = redis.call('GET', vkey)
  if old then untag(base, key, old) end
  if ttl == '' then redis.call('SET', vkey, envelope) else redis.call('SET', vkey, envelope, 'PX', ttl) end
  for _, tag in ipairs(tags) do
    local tkey = base .. ':t:' .. tag
    local isNew = redis.call('EXISTS', tkey) == 0
    redis.call('SADD', tkey, key)
    if ttl == '' then
      redis.call('PERSIST', tkey)
    else
      -- PTTL -1 on an existing set: a member without expiry made it persistent; keep it so.
      local left = redis.call('PTTL', tkey)
      if isNew or (left ~= -1 and left < tonumber(ttl)) then redis.call('PEXPIRE', tkey, ttl) end
    end
  end
end
local function bump(base, window)
  return redis.call('INCR', base .. ':seq')
end
`;

/**
 * Looks up many keys that an MGET just found missing (the lookups of one tick are batched). KEYS:
 * value₁, lease₁, value₂, lease₂, …. ARGV: base, leaseMs, token₁, token₂, …. → one reply per key:
 * {1, envelope} hit (arrived meanwhile) | {2, seq, sec, usec} lease taken | {3, lease pttl} busy.
 */
export const LOOKUP_SCRIPT = defineScript(`
local replies = {}
local seq, sec, usec
for i = 1, #KEYS / 2 do
  local vkey = KEYS[2 * i - 1]
  local lkey = KEYS[2 * i]
  local v = redis.call('GET', vkey)
  if v then
    replies[i] = {1, v}
  elseif redis.call('SET', lkey, ARGV[2 + i], 'NX', 'PX', ARGV[2]) then
    if not seq then
      local t = redis.call('TIME')
      seq, sec, usec = redis.call('GET', ARGV[1] .. ':seq') or '0', t[1], t[2]
    end
    replies[i] = {2, seq, sec, usec}
  else
    replies[i] = {3, redis.call('PTTL', lkey)}
  end
end
return replies
`);

/**
 * Conditional store of a loaded value, releasing the lease. KEYS[1] value, KEYS[2] lease.
 * ARGV: base, key, token, envelope, ttlMs ('' = none), stampSeq, stampSec, stampUsec, staleGuardMs, tags….
 * → 1 stored | 0 refused (the key, a tag or the tier was invalidated after the stamp, or the stamp is
 * older than staleGuardMs so the invalidation records may be gone).
 */
export const FILL_SCRIPT = defineScript(`${UNTAG}${STORE}
local base = ARGV[1]
local key = ARGV[2]
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
local stamp = tonumber(ARGV[6])
local t = redis.call('TIME')
local ageMs = (tonumber(t[1]) - tonumber(ARGV[7])) * 1000 + (tonumber(t[2]) - tonumber(ARGV[8])) / 1000
if ageMs > tonumber(ARGV[9]) then return 0 end
if tonumber(redis.call('GET', base .. ':epoch') or '0') > stamp then return 0 end
if tonumber(redis.call('GET', base .. ':g:' .. key) or '0') > stamp then return 0 end
local tags = {}
for i = 10, #ARGV do
  if tonumber(redis.call('GET', base .. ':tg:' .. ARGV[i]) or '0') > stamp then return 0 end
  tags[#tags + 1] = ARGV[i]
end
store(base, key, ARGV[4], ARGV[5], tags)
return 1
`);

/**
 * Unconditional store (`Cache.set`): it is newer than any load in flight, so it bumps the key's
 * invalidation record. KEYS[1] value. ARGV: base, key, envelope, ttlMs ('' = none), staleGuardMs, tags….
 */
export const SET_SCRIPT = defineScript(`${UNTAG}${STORE}
local base = ARGV[1]
local key = ARGV[2]
local seq = bump(base)
redis.call('SET', base .. ':g:' .. key, seq, 'PX', ARGV[5])
local tags = {}
for i = 6, #ARGV do tags[#tags + 1] = ARGV[i] end
store(base, key, ARGV[3], ARGV[4], tags)
return 1
`);

/** KEYS[1] value. ARGV: base, key, staleGuardMs. Deletes and records the invalidation. */
export const DELETE_SCRIPT = defineScript(`${UNTAG}${STORE}
local base = ARGV[1]
local key = ARGV[2]
local seq = bump(base)
redis.call('SET', base .. ':g:' .. key, seq, 'PX', ARGV[3])
local old = redis.call('GET', KEYS[1])
if old then
  untag(base, key, old)
  redis.call('DEL', KEYS[1])
end
return 1
`);

/**
 * Deletes every key carrying any tag, atomically, and records the invalidation of the tags and of
 * each deleted key. KEYS: the tag sets. ARGV: base, staleGuardMs, tags…. → keys deleted.
 */
export const DELETE_TAGS_SCRIPT = defineScript(`${UNTAG}${STORE}
local base = ARGV[1]
local guard = ARGV[2]
local seq = bump(base)
local deleted = 0
for i = 3, #ARGV do
  local tkey = base .. ':t:' .. ARGV[i]
  redis.call('SET', base .. ':tg:' .. ARGV[i], seq, 'PX', guard)
  for _, key in ipairs(redis.call('SMEMBERS', tkey)) do
    local vkey = base .. ':v:' .. key
    local old = redis.call('GET', vkey)
    if old then
      untag(base, key, old)
      redis.call('DEL', vkey)
      deleted = deleted + 1
    end
    redis.call('SET', base .. ':g:' .. key, seq, 'PX', guard)
  end
  redis.call('DEL', tkey)
end
return deleted
`);

/**
 * KEYS[1] the tier's sequence, KEYS[2] its epoch (both `base:…`, so a Cluster routes the script to the tier's
 * slot). Records a clear: every load stamped before it is refused. → the clear's sequence number.
 */
export const CLEAR_EPOCH_SCRIPT = defineScript(`
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], seq)
return seq
`);

/** KEYS[1] lease. ARGV[1] token, ARGV[2] leaseMs. Extends the lease while this token holds it. → 1 | 0 (lost). */
export const RENEW_SCRIPT = defineScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

/** KEYS[1] lease. ARGV[1] token. Deletes the lease when this token still holds it. */
export const RELEASE_SCRIPT = defineScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
