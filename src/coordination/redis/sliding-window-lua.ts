/**
 * core/sliding-window.ts in Lua, for the per-minute limits a cluster shares (runs and tokens per
 * minute of projects and agents, provider requests and tokens per minute): a hash whose fields are
 * absolute bucket numbers (one per second) and whose values are the sums counted in them. The sum
 * over the last 60 buckets, the wait until it falls below a limit and the boundary rule (a sum that
 * has reached its limit is exhausted) are those of the in-process window, so a node answers the
 * same `Retry-After` whichever ledger it uses. Buckets that left the window are deleted as they are
 * read; the key expires two minutes after its last count.
 *
 * Prepended to the scripts that use it; defines `window_read`, `window_wait` and `window_add`.
 */

/** The Lua functions; the time arguments are the caller's clock (epoch ms). */
export const SLIDING_WINDOW_LUA = `
local BUCKET_MS = 1000
local BUCKETS = 60
local WINDOW_MS = 60000

-- The window at now: its current bucket, the sum of each live bucket and their total.
local function window_read(key, now)
  local current = math.floor(now / BUCKET_MS)
  local flat = redis.call('HGETALL', key)
  local sums, total, stale = {}, 0, {}
  for i = 1, #flat, 2 do
    local bucket = tonumber(flat[i])
    if bucket > current - BUCKETS then
      local v = tonumber(flat[i + 1])
      sums[bucket] = v
      total = total + v
    else
      stale[#stale + 1] = flat[i]
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return { current = current, sums = sums, total = total }
end

-- Milliseconds until the window's total falls below limit (0 when it is below now).
local function window_wait(w, now, limit)
  local excess = w.total - limit
  if excess < 0 then return 0 end
  for age = BUCKETS - 1, 0, -1 do
    local bucket = w.current - age
    local v = w.sums[bucket]
    if v ~= nil then
      excess = excess - v
      if excess < 0 then return math.max(0, (bucket + BUCKETS) * BUCKET_MS - now) end
    end
  end
  return WINDOW_MS
end

-- Adds an integer amount in the bucket of at.
local function window_add(key, at, amount)
  redis.call('HINCRBY', key, string.format('%d', math.floor(at / BUCKET_MS)), amount)
  redis.call('PEXPIRE', key, 2 * WINDOW_MS)
end
`;
