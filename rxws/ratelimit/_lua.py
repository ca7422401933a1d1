"""The Lua scripts of the shared ledger: each decides atomically inside Redis, on its clock.

Private: :mod:`rxws.ratelimit.redis_store` (synchronous) and :mod:`rxws.ratelimit.fleet`
(asynchronous) run them. Times are whole microseconds; ``TIME`` is read by the script unless the
caller passes its own (``clock="caller"``).
"""

from __future__ import annotations

__all__ = ["DECIDE_LUA", "RELEASE_LUA", "REMAINING_LUA", "RENEW_LUA", "REPORT_LUA", "WINDOW_LUA"]


def _now_us_lua() -> str:
    return """
local t
if ARGV[CLOCK] == '' then
  local now = redis.call('TIME')
  t = tonumber(now[1]) * 1000000 + tonumber(now[2])
else
  t = tonumber(ARGV[CLOCK])
end
"""


WINDOW_LUA = (
    """
-- KEYS[1] log: sorted set, score = admission time (µs), member = "<t>:<seq>:<cost>"
-- KEYS[2] meta: hash with total (live cost), last (latest time recorded, µs), seq
-- ARGV: mode (0 check, 1 commit, 2 try_acquire), cost, limit, per (µs), time (µs) or '' for TIME
-- returns {allowed (0/1), wait (µs), t (µs)}
local log, meta = KEYS[1], KEYS[2]
local mode = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local per = tonumber(ARGV[4])
"""
    + _now_us_lua().replace("CLOCK", "5")
    + """
local state = redis.call('HMGET', meta, 'total', 'last')
local total = tonumber(state[1]) or 0
local last = tonumber(state[2])
if last and t < last then t = last end
local edge = string.format('%.0f', t - per)
local gone = redis.call('ZRANGEBYSCORE', log, '-inf', edge)
local dirty = #gone > 0
for i = 1, #gone do
  total = total - tonumber(string.match(gone[i], '[^:]+$'))
end
if dirty then redis.call('ZREMRANGEBYSCORE', log, '-inf', edge) end
if redis.call('ZCARD', log) == 0 then total = 0 end
local allowed = mode == 1 or total + cost <= limit
local wait = 0
if allowed then
  if mode ~= 0 then
    if cost > 0 then
      local seq = redis.call('HINCRBY', meta, 'seq', 1)
      local ts = string.format('%.0f', t)
      redis.call('ZADD', log, ts, string.format('%s:%d:%s', ts, seq, ARGV[2]))
      total = total + cost
    end
    last = t
    dirty = true
  end
else
  -- the oldest entries leave first: read just enough of them (usually one)
  local need = total + cost - limit
  local freed = 0
  local start, chunk = 0, 1
  wait = per
  while wait == per do
    local entries = redis.call('ZRANGE', log, start, start + chunk - 1, 'WITHSCORES')
    if #entries == 0 then break end
    for i = 1, #entries, 2 do
      freed = freed + tonumber(string.match(entries[i], '[^:]+$'))
      if freed >= need then
        wait = tonumber(entries[i + 1]) + per - t
        break
      end
    end
    start, chunk = start + chunk, chunk * 4
  end
end
if dirty then
  redis.call('HSET', meta, 'total', string.format('%.17g', total), 'last', string.format('%.0f', last or t))
  local ttl = math.ceil(per / 1000) + 1000
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', meta, ttl)
end
if allowed then return {1, 0, t} end
return {0, wait, t}
"""
)


REPORT_LUA = (
    """
-- KEYS[1] penalty: hash with level (violations in a row) and until (end, µs)
-- ARGV: initial, factor, max, reset_after (seconds), retry_after (seconds or ''), time (µs or '')
-- returns {seconds from t to the end (µs), t (µs)}
local initial, factor, maxs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reset_after = tonumber(ARGV[4]) * 1000000
"""
    + _now_us_lua().replace("CLOCK", "6")
    + """
local state = redis.call('HMGET', KEYS[1], 'level', 'until')
local level = 0
local until_ = tonumber(state[2])
if until_ and t - until_ < reset_after then level = tonumber(state[1]) or 0 end
local seconds = maxs
if level <= 1000 then seconds = math.min(maxs, initial * factor ^ level) end
local ra = tonumber(ARGV[5])
if ra and ra > seconds then seconds = ra end
local u = t + math.ceil(seconds * 1000000)
if until_ and until_ > u then u = until_ end
redis.call('HSET', KEYS[1], 'level', level + 1, 'until', string.format('%.0f', u))
redis.call('PEXPIRE', KEYS[1], math.ceil((u - t + reset_after) / 1000) + 1000)
return {u - t, t}
"""
)

REMAINING_LUA = (
    """
-- KEYS[1] penalty hash; ARGV[1] time (µs or ''); returns {µs left (>= 0), t (µs)}
"""
    + _now_us_lua().replace("CLOCK", "1")
    + """
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until'))
if until_ and until_ > t then return {until_ - t, t} end
return {0, t}
"""
)


DECIDE_LUA = """
-- Several rules of one action, decided all or nothing on the server clock (TIME, microseconds).
-- KEYS: two per rule (window: log, meta; bucket and lease: the key, then an unused one).
-- ARGV[1] holder (a lease's member), ARGV[2] n, then five per rule: kind, p1, p2, p3, cost.
--   'w' window: p1 limit, p2 per (us), p3 hold (us): an admission is logged at t + hold
--   'b' bucket: p1 refill per us, p2 burst
--   'l' lease:  p1 cap, p2 ttl (us): the holder is a member until t + ttl (or released)
-- returns {allowed (0/1), wait (us; -1 = never), t (us), index of the first refusing rule}
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local holder = ARGV[1]
local n = tonumber(ARGV[2])
local wait, failed = 0, 0
local state = {}
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local kind = ARGV[a]
  local p1, p2, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 4])
  local k1, k2 = KEYS[2 * i - 1], KEYS[2 * i]
  local w = 0
  if kind == 'w' then
    local total = tonumber(redis.call('HGET', k2, 'total')) or 0
    local edge = string.format('%.0f', t - p2)
    local gone = redis.call('ZRANGEBYSCORE', k1, '-inf', edge)
    for j = 1, #gone do total = total - tonumber(string.match(gone[j], '[^:]+$')) end
    if #gone > 0 then redis.call('ZREMRANGEBYSCORE', k1, '-inf', edge) end
    if redis.call('ZCARD', k1) == 0 then total = 0 end
    if #gone > 0 then redis.call('HSET', k2, 'total', string.format('%.17g', total)) end
    state[i] = total
    if total + cost > p1 then
      if cost > p1 then
        w = -1
      else
        local need, freed = total + cost - p1, 0
        local entries = redis.call('ZRANGE', k1, 0, -1, 'WITHSCORES')
        w = p2
        for j = 1, #entries, 2 do
          freed = freed + tonumber(string.match(entries[j], '[^:]+$'))
          if freed >= need then
            w = tonumber(entries[j + 1]) + p2 - t
            break
          end
        end
        if w < 1 then w = 1 end
      end
    end
  elseif kind == 'b' then
    local s = redis.call('HMGET', k1, 'tokens', 'ts')
    local tokens, ts = tonumber(s[1]), tonumber(s[2])
    if not tokens then tokens, ts = p2, t end
    if t > ts then
      tokens = math.min(p2, tokens + (t - ts) * p1)
      ts = t
    end
    state[i] = tokens
    if tokens < cost then
      if cost > p2 then w = -1 else w = math.ceil((cost - tokens) / p1) end
    end
  else
    redis.call('ZREMRANGEBYSCORE', k1, '-inf', string.format('%.0f', t))
    if not redis.call('ZSCORE', k1, holder) and redis.call('ZCARD', k1) + 1 > p1 then w = -1 end
  end
  if w ~= 0 then
    if failed == 0 then failed = i end
    if w == -1 or wait == -1 then wait = -1 elseif w > wait then wait = w end
  end
end
if failed ~= 0 then return {0, wait, t, failed} end
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local kind = ARGV[a]
  local p1, p2, p3, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local k1, k2 = KEYS[2 * i - 1], KEYS[2 * i]
  if kind == 'w' then
    if cost > 0 then
      local seq = redis.call('HINCRBY', k2, 'seq', 1)
      local ts = string.format('%.0f', t + p3)
      redis.call('ZADD', k1, ts, ts .. ':' .. seq .. ':' .. ARGV[a + 4])
      redis.call('HSET', k2, 'total', string.format('%.17g', state[i] + cost))
      local ttl = math.ceil((p2 + p3) / 1000) + 1000
      redis.call('PEXPIRE', k1, ttl)
      redis.call('PEXPIRE', k2, ttl)
    end
  elseif kind == 'b' then
    redis.call('HSET', k1, 'tokens', string.format('%.17g', state[i] - cost), 'ts', string.format('%.0f', t))
    redis.call('PEXPIRE', k1, math.ceil(p2 / p1 / 1000) + 1000)
  else
    redis.call('ZADD', k1, string.format('%.0f', t + p2), holder)
    redis.call('PEXPIRE', k1, math.ceil(p2 / 1000) + 1000)
  end
end
return {1, 0, t, 0}
"""

RENEW_LUA = """
-- Leases renewed (or re-asserted after a restart): KEYS[i] holds ARGV[i + 1] until t + ARGV[1] us.
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], string.format('%.0f', t + ttl), ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], math.ceil(ttl / 1000) + 1000)
end
return #KEYS
"""

RELEASE_LUA = """
-- Leases released at once: ARGV[i] leaves KEYS[i]; returns how many were held.
local freed = 0
for i = 1, #KEYS do freed = freed + redis.call('ZREM', KEYS[i], ARGV[i]) end
return freed
"""
