/**
 * The Lua scripts of {@link RedisRateLimitStore}. Each runs atomically on one slot (both keys it touches
 * carry the same hash tag) and reads Redis's own clock (`TIME`), so the processes' clocks never enter
 * the window.
 *
 * A window is a sorted set of reservations (score = start in ms with microseconds; member = a unique id,
 * prefixed `"<weight>:"` when the weight is not 1) and, only when needed, a small hash holding `x` (the
 * sum of `weight - 1` over the log, so units in use = ZCARD + x) and `p` (a shared pause's end). With
 * weight-1 reservations and no pause a tenant is one key, and every key expires one window after its
 * newest reservation (or at the pause's end), so idle tenants leave nothing behind.
 * @module
 */
import { defineScript } from './connection.js';

/** Shared prelude: `now`, the weight of a member, expiry of old reservations, and moving restamps to now. */
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function extraOf(member)
  local colon = string.find(member, ':', 1, true)
  if not colon then return 0 end
  return tonumber(string.sub(member, 1, colon - 1)) - 1
end
-- Drops reservations older than the window; returns the updated extra weight.
local function expireOld(window, extra)
  local cutoff = now - window
  if extra ~= 0 then
    local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
    if #expired == 0 then return extra end
    for i = 1, #expired do extra = extra - extraOf(expired[i]) end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  return extra
end
-- Moves reservations to their tasks' start: ARGV[first..] holds pairs (member, ms since the start as
-- the sender measured it when sending), so a move that waited to ride along is stamped at the start, not
-- at its arrival. One that already expired is added back: a unit is never uncounted while its task is
-- within a window of its real start.
local function moveToNow(first, extra)
  for i = first, #ARGV - 1, 2 do
    local member = ARGV[i]
    if redis.call('ZADD', KEYS[1], now - tonumber(ARGV[i + 1]), member) == 1 then extra = extra + extraOf(member) end
  end
  return extra
end
-- Writes the extra weight back when it changed and keeps both keys alive for ttl (a pause may keep the
-- hash longer). The log's expiry moves only when a reservation was added or moved (\`touched\`): with
-- none, its newest reservation is unchanged and so is the expiry set when that one was written.
local function finish(ttl, extra, oldExtra, touched)
  if touched then redis.call('PEXPIRE', KEYS[1], ttl) end
  if extra ~= oldExtra and (extra == 0 or redis.call('ZCARD', KEYS[1]) == 0) then
    redis.call('HDEL', KEYS[2], 'x')
  elseif extra ~= 0 then
    if extra ~= oldExtra then redis.call('HSET', KEYS[2], 'x', tostring(extra)) end
    if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
  end
end
`;

/**
 * KEYS: log, meta. ARGV: limit (-1 = none), windowMs, n, then n pairs (weight, member) — the reservations
 * of this key made in one event-loop turn, decided in call order — then `ahead, base` (reserve up to
 * `ahead` weight-1 units more, members `base..1`, `base..2`…, when every reservation of the batch was
 * granted and, after them, at most half of the window is in use: only half of what is left below that
 * half is taken, so a process reserving ahead can never take the window near its limit), then pairs
 * (member, ms since its start) to move (restamps of this key waiting to be sent ride along). Returns, per
 * reservation, `status, waitMs, used` as strings — status `"0"` reserved, `"w"` wait, `"p"` paused; waitMs
 * `"-1"` when the weight can never fit — then the number of units reserved ahead, and `used` after them.
 * One script for a whole batch: the clock, expiry, count and TTL are paid once, not per reservation.
 */
export const RESERVE_SCRIPT = defineScript(`${PRELUDE}
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local ttl = math.ceil(window) + 1
local meta = redis.call('HMGET', KEYS[2], 'x', 'p')
local oldExtra = tonumber(meta[1] or '0')
local extra = expireOld(window, oldExtra)
local firstMove = 6 + 2 * n
if #ARGV >= firstMove then extra = moveToNow(firstMove, extra) end
local count = redis.call('ZCARD', KEYS[1])
if count == 0 then extra = 0 end
local touched = #ARGV >= firstMove
local allGranted = true
local pausedLeft = 0
if meta[2] then pausedLeft = tonumber(meta[2]) - now end
local out = {}
for i = 1, n do
  local weight = tonumber(ARGV[2 + 2 * i])
  local used = count + extra
  if pausedLeft > 0 then
    allGranted = false
    out[#out + 1] = 'p'
    out[#out + 1] = tostring(pausedLeft)
  elseif limit >= 0 and used + weight > limit then
    allGranted = false
    out[#out + 1] = 'w'
    if weight > limit then
      out[#out + 1] = '-1'
    else
      local need = used + weight - limit
      local waitMs = window
      if extra == 0 then
        -- Every reservation in the log weighs 1: the one whose expiry frees enough is at rank ceil(need) - 1,
        -- an O(log n) lookup, so a flood of refused requests does not scan the log.
        local entry = redis.call('ZRANGE', KEYS[1], math.ceil(need) - 1, math.ceil(need) - 1, 'WITHSCORES')
        if entry[2] then waitMs = tonumber(entry[2]) + window - now end
      else
        local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
        local freed = 0
        for j = 1, #entries, 2 do
          freed = freed + 1 + extraOf(entries[j])
          if freed >= need then
            waitMs = tonumber(entries[j + 1]) + window - now
            break
          end
        end
      end
      if waitMs <= 0 then waitMs = 0.001 end
      out[#out + 1] = tostring(waitMs)
    end
  else
    redis.call('ZADD', KEYS[1], now, ARGV[3 + 2 * i])
    touched = true
    count = count + 1
    extra = extra + weight - 1
    used = used + weight
    out[#out + 1] = '0'
    out[#out + 1] = '0'
  end
  out[#out + 1] = tostring(used)
end
local ahead = tonumber(ARGV[4 + 2 * n])
if ahead > 0 and allGranted then
  if limit >= 0 then
    local room = math.floor((limit / 2 - count - extra) / 2)
    if room < ahead then ahead = room end
  end
  if ahead > 0 then
    local base = ARGV[5 + 2 * n]
    local pairs = {}
    for i = 1, ahead do
      pairs[2 * i - 1] = now
      pairs[2 * i] = base .. i
    end
    redis.call('ZADD', KEYS[1], unpack(pairs))
    touched = true
    count = count + ahead
  end
else
  ahead = 0
end
if ahead < 0 then ahead = 0 end
out[#out + 1] = tostring(ahead)
out[#out + 1] = tostring(count + extra)
finish(ttl, extra, oldExtra, touched)
return out
`);

/** KEYS: log, meta. ARGV: windowMs, then pairs (member, ms since its start). Moves reservations to their start. */
export const RESTAMP_SCRIPT = defineScript(`${PRELUDE}
local window = tonumber(ARGV[1])
local oldExtra = tonumber(redis.call('HGET', KEYS[2], 'x') or '0')
local extra = moveToNow(2, expireOld(window, oldExtra))
finish(math.ceil(window) + 1, extra, oldExtra, true)
return 1
`);

/** KEYS: log, meta. ARGV: members…. Removes reservations whose start did not happen. */
export const RELEASE_SCRIPT = defineScript(`${PRELUDE}
local oldExtra = tonumber(redis.call('HGET', KEYS[2], 'x') or '0')
local extra = oldExtra
local removed = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    extra = extra - extraOf(ARGV[i])
    removed = removed + 1
  end
end
if extra ~= oldExtra then
  if extra == 0 or redis.call('ZCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[2], 'x')
  else redis.call('HSET', KEYS[2], 'x', tostring(extra)) end
end
return removed
`);

/**
 * KEYS: log, meta. ARGV: durationMs. Pauses the key until now + durationMs unless a longer pause is in
 * force; the hash lives at least until the pause ends.
 */
export const PAUSE_SCRIPT = defineScript(`${PRELUDE}
local duration = tonumber(ARGV[1])
local untilMs = now + duration
local current = redis.call('HGET', KEYS[2], 'p')
if current and tonumber(current) >= untilMs then return 0 end
redis.call('HSET', KEYS[2], 'p', tostring(untilMs))
local ttl = math.ceil(duration) + 1
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`);
