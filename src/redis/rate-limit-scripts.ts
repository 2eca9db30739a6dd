/**
 * The Lua scripts of {@link RedisRateLimitStore}. Each runs atomically on one slot (every key it touches
 * carries the same hash tag) and reads Redis's own clock (`TIME`), so the processes' clocks never enter
 * the window. A window is a sorted set of reservations (member `"<weight>:<id>"`, score = start in ms with
 * microseconds) plus a string holding the sum of their weights; both expire one window after the newest
 * reservation, so idle keys leave nothing behind.
 * @module
 */
import { defineScript } from './connection.js';

/** Shared prelude: `now` in fractional ms from Redis's clock, and the expiry of old reservations. */
const EXPIRE_OLD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function weightOf(member)
  return tonumber(string.sub(member, 1, string.find(member, ':', 1, true) - 1))
end
local function expireOld(window)
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  local cutoff = now - window
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if #expired > 0 then
    for i = 1, #expired do used = used - weightOf(expired[i]) end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
    -- Fractional weights leave rounding dust; an empty log holds exactly nothing.
    if redis.call('ZCARD', KEYS[1]) == 0 then used = 0 end
    redis.call('SET', KEYS[2], tostring(used), 'PX', math.ceil(window) + 1)
  end
  return used
end
`;

/**
 * KEYS: log, sum, pause. ARGV: weight, limit (-1 = none), windowMs, member.
 * Returns `{ status, waitMs, used }` as strings: status `"0"` reserved, `"w"` wait, `"p"` paused;
 * waitMs `"-1"` when the weight can never fit.
 */
export const RESERVE_SCRIPT = defineScript(`${EXPIRE_OLD}
local weight = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local pausedUntil = redis.call('GET', KEYS[3])
if pausedUntil then
  local left = tonumber(pausedUntil) - now
  if left > 0 then return {'p', tostring(left), '0'} end
end
local used = expireOld(window)
if limit >= 0 and used + weight > limit then
  if weight > limit then return {'w', '-1', tostring(used)} end
  local need = used + weight - limit
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + weightOf(entries[i])
    if freed >= need then
      local waitMs = tonumber(entries[i + 1]) + window - now
      if waitMs <= 0 then waitMs = 0.001 end
      return {'w', tostring(waitMs), tostring(used)}
    end
  end
  return {'w', tostring(window), tostring(used)}
end
used = used + weight
local ttl = math.ceil(window) + 1
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], tostring(used), 'PX', ttl)
return {'0', '0', tostring(used)}
`);

/**
 * KEYS: log, sum. ARGV: windowMs, members…. Moves each reservation to now (its task has started); one
 * that already expired is added back, so a unit is never uncounted while its task is within a window of
 * its start.
 */
export const RESTAMP_SCRIPT = defineScript(`${EXPIRE_OLD}
local window = tonumber(ARGV[1])
local used = expireOld(window)
for i = 2, #ARGV do
  local member = ARGV[i]
  if not redis.call('ZSCORE', KEYS[1], member) then used = used + weightOf(member) end
  redis.call('ZADD', KEYS[1], now, member)
end
local ttl = math.ceil(window) + 1
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], tostring(used), 'PX', ttl)
return 1
`);

/** KEYS: log, sum. ARGV: members…. Removes reservations whose start did not happen. */
export const RELEASE_SCRIPT = defineScript(`
local function weightOf(member)
  return tonumber(string.sub(member, 1, string.find(member, ':', 1, true) - 1))
end
local freed = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then freed = freed + weightOf(ARGV[i]) end
end
if freed > 0 then
  local ttl = redis.call('PTTL', KEYS[2])
  local used = tonumber(redis.call('GET', KEYS[2]) or '0') - freed
  if used < 0 or redis.call('ZCARD', KEYS[1]) == 0 then used = 0 end
  if ttl > 0 then redis.call('SET', KEYS[2], tostring(used), 'PX', ttl) end
end
return freed
`);

/** KEYS: pause. ARGV: durationMs. Pauses the key until now + durationMs unless a longer pause is in force. */
export const PAUSE_SCRIPT = defineScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local untilMs = now + tonumber(ARGV[1])
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= untilMs then return 0 end
redis.call('SET', KEYS[1], tostring(untilMs), 'PX', math.ceil(tonumber(ARGV[1])) + 1)
return 1
`);
