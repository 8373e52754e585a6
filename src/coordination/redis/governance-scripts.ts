/**
 * The Lua scripts of the Redis governance ledger. Each call is atomic in Redis, so a check and the
 * take that follows it cannot be split by another node's: that is what makes quotas and budgets
 * hold for the cluster. Two scripts, each with a mode as its first argument: QUOTAS (run places,
 * runs and tokens per minute) and BUDGETS (the daily and monthly windows). Numbers that are not
 * integers (USD) are kept as `%.17g` strings, which read back to the very same double, so Redis
 * adds and compares exactly as the local ledger does in JavaScript.
 *
 * Places and reservations are held per run: a place is a member of the scope's sorted set scored
 * by its expiry; a reservation is the run's amount in the window's `holds` hash, with its expiry in
 * the window's `expiry` sorted set. The holding node pushes the expiries forward while the run
 * lives; whatever expired is purged by the next script that reads the key, so a dead node's holds
 * free themselves.
 */
import { LuaScript } from './lua-script.ts';
import { SLIDING_WINDOW_LUA } from './sliding-window-lua.ts';

const COMMON = `
local function limit_of(x) if x == '' then return nil end return tonumber(x) end
local function fmt(x) return string.format('%.17g', x) end
`;

/**
 * Modes (KEYS / ARGV after the mode):
 * - take: running:p, running:a, rpm:p, rpm:a, tpm:p / now, hold id, expires at, key ttl, project
 *   max, agent max, project rpm, agent rpm, project tpm ('' = no limit). Answers {'ok', running},
 *   {'places', scope} or {'rate', scope, quota, waitMs}.
 * - uncount: rpm:p, rpm:a / at.  release: running:p, running:a / hold id.  tokens: tpm:p / now, n.
 * - usage: running:p, rpm:p, tpm:p / now. Answers {running, runs, tokens}.
 */
export const QUOTAS = new LuaScript(
  'the quota script',
  `${COMMON}${SLIDING_WINDOW_LUA}
local mode = ARGV[1]
if mode == 'take' then
  local now = tonumber(ARGV[2])
  local id, expires, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local p_max, a_max = limit_of(ARGV[6]), limit_of(ARGV[7])
  local p_rpm, a_rpm, p_tpm = limit_of(ARGV[8]), limit_of(ARGV[9]), limit_of(ARGV[10])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local p_running = redis.call('ZCARD', KEYS[1])
  if p_max and p_running >= p_max then return { 'places', 'project' } end
  if a_max and redis.call('ZCARD', KEYS[2]) >= a_max then return { 'places', 'agent' } end
  local p_runs = window_read(KEYS[3], now)
  if p_rpm and p_runs.total >= p_rpm then
    return { 'rate', 'project', 'runsPerMinute', fmt(window_wait(p_runs, now, p_rpm)) }
  end
  local a_runs = window_read(KEYS[4], now)
  if a_rpm and a_runs.total >= a_rpm then
    return { 'rate', 'agent', 'runsPerMinute', fmt(window_wait(a_runs, now, a_rpm)) }
  end
  if p_tpm then
    local tokens = window_read(KEYS[5], now)
    if tokens.total >= p_tpm then
      return { 'rate', 'project', 'tokensPerMinute', fmt(window_wait(tokens, now, p_tpm)) }
    end
  end
  for i = 1, 2 do
    redis.call('ZADD', KEYS[i], expires, id)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  window_add(KEYS[3], now, 1)
  window_add(KEYS[4], now, 1)
  return { 'ok', p_running + 1 }
elseif mode == 'uncount' then
  local at = tonumber(ARGV[2])
  for i = 1, 2 do
    if redis.call('EXISTS', KEYS[i]) == 1 then window_add(KEYS[i], at, -1) end
  end
  return 'ok'
elseif mode == 'release' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 'ok'
elseif mode == 'tokens' then
  window_add(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
  return 'ok'
elseif mode == 'usage' then
  local now = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  return { redis.call('ZCARD', KEYS[1]), fmt(window_read(KEYS[2], now).total), fmt(window_read(KEYS[3], now).total) }
end
return redis.error_reply('ERR unknown mode ' .. tostring(mode))
`,
);

/**
 * Modes; a window is three keys (its account hash: spent, reserved, end; its holds hash: hold id →
 * USD; its expiry sorted set: hold id → expires at), the daily window's first. The last argument of
 * every mode is how long a window's keys outlive its end (runs still settle into it). Expiries are
 * relative to the caller's now, so they hold whatever Redis's own clock says.
 * - init: account / spent, end, now. Creates the account only when it does not exist, so the
 *   first node to read the store sets it for all. Answers 1 when it created it.
 * - reserve: daily ×3, monthly ×3 / now, hold id, expires at, usd, daily limit, monthly limit.
 *   Answers {'ok', daily spent, daily reserved, monthly spent, monthly reserved},
 *   {'missing', kind} or {'exhausted', kind, spent, reserved, end}.
 * - unreserve: windows ×3 / hold id, usd.  charge: accounts / usd.
 * - windows: daily ×3, monthly ×3 / now. Answers per window {spent, reserved, end} or {}.
 */
export const BUDGETS = new LuaScript(
  'the budget script',
  `${COMMON}
local KINDS = { 'daily', 'monthly' }
local GRACE_MS = tonumber(ARGV[#ARGV])

-- Frees the holds that expired (their node stopped renewing them).
local function purge(account, holds, expiry, now)
  local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, 1000)
  if #dead == 0 then return end
  local reserved = tonumber(redis.call('HGET', account, 'reserved')) or 0
  for _, id in ipairs(dead) do reserved = reserved - (tonumber(redis.call('HGET', holds, id)) or 0) end
  redis.call('HDEL', holds, unpack(dead))
  redis.call('ZREM', expiry, unpack(dead))
  -- With no hold left nothing is reserved: no rounding residue survives the last one.
  if reserved < 0 or redis.call('HLEN', holds) == 0 then reserved = 0 end
  redis.call('HSET', account, 'reserved', fmt(reserved))
end

local function read(account)
  local v = redis.call('HMGET', account, 'spent', 'reserved', 'end')
  return { spent = tonumber(v[1]) or 0, reserved = tonumber(v[2]) or 0, ['end'] = v[3] }
end

local mode = ARGV[1]
if mode == 'init' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('HSET', KEYS[1], 'spent', ARGV[2], 'reserved', '0', 'end', ARGV[3])
  local ttl = math.max(1000, tonumber(ARGV[3]) + GRACE_MS - tonumber(ARGV[4]))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
  return 1
elseif mode == 'reserve' then
  local now, id, expires, usd = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local limits = { limit_of(ARGV[6]), limit_of(ARGV[7]) }
  local windows = {}
  for i = 1, 2 do
    local k = (i - 1) * 3
    if redis.call('EXISTS', KEYS[k + 1]) == 0 then return { 'missing', KINDS[i] } end
    purge(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], now)
    windows[i] = read(KEYS[k + 1])
  end
  for i = 1, 2 do
    local w, lim = windows[i], limits[i]
    local committed = w.spent + w.reserved
    if lim and (committed >= lim or committed + usd > lim) then
      return { 'exhausted', KINDS[i], fmt(w.spent), fmt(w.reserved), w['end'] }
    end
  end
  for i = 1, 2 do
    local k = (i - 1) * 3
    local w = windows[i]
    w.reserved = w.reserved + usd
    if usd > 0 then
      redis.call('HSET', KEYS[k + 1], 'reserved', fmt(w.reserved))
      local held = tonumber(redis.call('HGET', KEYS[k + 2], id)) or 0
      redis.call('HSET', KEYS[k + 2], id, fmt(held + usd))
      redis.call('ZADD', KEYS[k + 3], expires, id)
      local ttl = string.format('%d', math.max(1000, tonumber(w['end']) + GRACE_MS - now))
      redis.call('PEXPIRE', KEYS[k + 2], ttl)
      redis.call('PEXPIRE', KEYS[k + 3], ttl)
    end
  end
  return { 'ok', fmt(windows[1].spent), fmt(windows[1].reserved), fmt(windows[2].spent), fmt(windows[2].reserved) }
elseif mode == 'unreserve' then
  local id, usd = ARGV[2], tonumber(ARGV[3])
  for k = 0, #KEYS - 1, 3 do
    local account, holds, expiry = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
    local held = tonumber(redis.call('HGET', holds, id))
    if held then
      local take = math.min(held, usd)
      if held - take <= 0 then
        redis.call('HDEL', holds, id)
        redis.call('ZREM', expiry, id)
      else
        redis.call('HSET', holds, id, fmt(held - take))
      end
      if redis.call('EXISTS', account) == 1 then
        local reserved = (tonumber(redis.call('HGET', account, 'reserved')) or 0) - take
        if reserved < 0 or redis.call('HLEN', holds) == 0 then reserved = 0 end
        redis.call('HSET', account, 'reserved', fmt(reserved))
      end
    end
  end
  return 'ok'
elseif mode == 'charge' then
  local usd = tonumber(ARGV[2])
  for _, account in ipairs(KEYS) do
    if redis.call('EXISTS', account) == 1 then
      local spent = tonumber(redis.call('HGET', account, 'spent')) or 0
      redis.call('HSET', account, 'spent', fmt(spent + usd))
    end
  end
  return 'ok'
elseif mode == 'windows' then
  local now = tonumber(ARGV[2])
  local out = {}
  for i = 1, 2 do
    local k = (i - 1) * 3
    if redis.call('EXISTS', KEYS[k + 1]) == 1 then
      purge(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], now)
      local w = read(KEYS[k + 1])
      out[i] = { fmt(w.spent), fmt(w.reserved), w['end'] }
    else
      out[i] = {}
    end
  end
  return out
end
return redis.error_reply('ERR unknown mode ' .. tostring(mode))
`,
);
