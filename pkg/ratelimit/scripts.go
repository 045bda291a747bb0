package ratelimit

import "github.com/redis/go-redis/v9"

// The GCRA in these scripts is redis_rate v10's allowN script
// (github.com/go-redis/redis_rate, from rwz/redis-gcra, Copyright (c) 2017
// Pavel Pravosud, MIT): same epoch, same float arithmetic, same TAT encoding
// and key, so a request bucket written here is read correctly by
// redis_rate.Limiter and the other way round.

// gcraLua is shared by the scripts below. now is Redis TIME, so replicas
// never disagree about the clock.
const gcraLua = `
redis.replicate_commands()

local jan_1_2017 = 1483228800
local t = redis.call("TIME")
local now = (t[1] - jan_1_2017) + (t[2] / 1000000)

-- gcra returns allowed, remaining, retry_after, reset_after, new_tat
local function gcra(key, burst, rate, period, cost)
  local emission_interval = period / rate
  local increment = emission_interval * cost
  local burst_offset = emission_interval * burst
  local tat = redis.call("GET", key)
  if not tat then
    tat = now
  else
    tat = tonumber(tat)
  end
  tat = math.max(tat, now)
  local new_tat = tat + increment
  local allow_at = new_tat - burst_offset
  local diff = now - allow_at
  local remaining = diff / emission_interval
  if remaining < 0 then
    return false, 0, diff * -1, tat - now, tat
  end
  return true, remaining, -1, new_tat - now, new_tat
end

local function store_tat(key, tat)
  if tat > now then
    redis.call("SET", key, tat, "EX", math.ceil(tat - now))
  else
    redis.call("DEL", key)
  end
end

-- shift moves a TAT by delta units: a charge starts from now when idle, a
-- refund never resurrects an expired bucket.
local function shift(key, emission_interval, delta)
  local tat = redis.call("GET", key)
  if delta > 0 then
    if not tat then tat = now else tat = math.max(tonumber(tat), now) end
    store_tat(key, tat + delta * emission_interval)
  elseif delta < 0 and tat then
    store_tat(key, tonumber(tat) + delta * emission_interval)
  end
end

-- add_money changes a micro-dollar counter, never below zero.
local function add_money(key, delta, ttl)
  local v = tonumber(redis.call("GET", key) or "0") + delta
  if v < 0 then v = 0 end
  -- %.0f keeps the counter an integer string INCRBY accepts
  redis.call("SET", key, string.format("%.0f", v), "EX", ttl)
end
`

// admitScript runs every pre-check of one request and commits only if all
// pass. KEYS: request TAT, token TAT, identity budget, the identity's call
// leases (a sorted set: call id by lease expiry), global budget (absent
// when the global cap is checked separately). ARGV: req burst, req rate,
// req period (rate 0 = no check); tokens per minute, token cost (0 = no
// check); identity budget, global budget (µ$, 0 = no check); cost (µ$);
// budget TTL seconds; concurrent-call cap (0 = no check), call id, lease
// seconds.
// Returns {allowed, reason, remaining, retry_after, reset_after, spent,
// global spent}; reason 1 requests, 2 tokens, 3 budget, 4 global budget, 5
// concurrent calls; the spends (µ$, reservations included, this one when
// admitted) are 0 for a budget not checked.
var admitScript = redis.NewScript(gcraLua + `
local req_burst = tonumber(ARGV[1])
local req_rate = tonumber(ARGV[2])
local req_period = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local tok_cost = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local global = tonumber(ARGV[7])
local cost = tonumber(ARGV[8])
local ttl = tonumber(ARGV[9])
local conc = tonumber(ARGV[10] or "0")
local call_id = ARGV[11]
local lease = tonumber(ARGV[12] or "0")

local reason = 0
local retry_after = -1

local req_ok, req_rem, req_retry, req_reset, req_tat
if req_rate > 0 then
  req_ok, req_rem, req_retry, req_reset, req_tat = gcra(KEYS[1], req_burst, req_rate, req_period, 1)
  if not req_ok then reason = 1; retry_after = req_retry end
end

local tok_ok, tok_retry, tok_tat, _
if tpm > 0 and tok_cost > 0 then
  tok_ok, _, tok_retry, _, tok_tat = gcra(KEYS[2], tpm, tpm, 60, tok_cost)
  if not tok_ok and reason == 0 then reason = 2; retry_after = tok_retry end
end

local spent = 0
if budget > 0 then
  spent = tonumber(redis.call("GET", KEYS[3]) or "0")
  if spent + cost > budget and reason == 0 then reason = 3 end
end

local gspent = 0
if global > 0 then
  gspent = tonumber(redis.call("GET", KEYS[5]) or "0")
  if gspent + cost > global and reason == 0 then reason = 4 end
end

if conc > 0 then
  -- leases of calls whose replica died expire by themselves
  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", now)
  if redis.call("ZCARD", KEYS[4]) >= conc and reason == 0 then reason = 5; retry_after = 1 end
end

if reason ~= 0 then
  -- nothing is consumed; report the request bucket as it stands
  local rem, reset = 0, 0
  if req_rate > 0 then
    local _
    _, rem, _, reset = gcra(KEYS[1], req_burst, req_rate, req_period, 0)
  end
  return {0, reason, rem, tostring(retry_after), tostring(reset), spent, gspent}
end

if req_rate > 0 then
  store_tat(KEYS[1], req_tat)
end
if tpm > 0 and tok_cost > 0 then
  store_tat(KEYS[2], tok_tat)
end
if budget > 0 then
  spent = redis.call("INCRBY", KEYS[3], cost)
  redis.call("EXPIRE", KEYS[3], ttl)
end
if global > 0 then
  gspent = redis.call("INCRBY", KEYS[5], cost)
  redis.call("EXPIRE", KEYS[5], ttl)
end
if conc > 0 then
  redis.call("ZADD", KEYS[4], now + lease, call_id)
  redis.call("EXPIRE", KEYS[4], math.ceil(lease) + 1)
end
return {1, 0, req_rem or 0, "-1", tostring(req_reset or 0), spent, gspent}
`)

// reserveScript reserves cost against one micro-dollar counter if it fits.
// Used for the global cap when it lives in another Cluster slot than the
// identity's keys. KEYS: counter. ARGV: limit, cost, TTL.
// Returns {allowed, spent}.
var reserveScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local spent = tonumber(redis.call("GET", KEYS[1]) or "0")
if spent + cost > limit then
  return {0, spent}
end
spent = redis.call("INCRBY", KEYS[1], cost)
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[3]))
return {1, spent}
`)

// adjustScript compensates one identity (a split admission refused on the
// other side): shifts the request and token buckets and changes the budget
// counters by signed deltas.
// KEYS: request TAT, token TAT, identity budget[, global budget].
// ARGV: req rate, req period, req delta (requests), tokens per minute,
// token delta, budget delta (µ$), budget TTL seconds[, global delta (µ$)].
var adjustScript = redis.NewScript(gcraLua + `
local req_rate = tonumber(ARGV[1])
local req_period = tonumber(ARGV[2])
local req_delta = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local tok_delta = tonumber(ARGV[5])
local money = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
if req_rate > 0 and req_delta ~= 0 then
  shift(KEYS[1], req_period / req_rate, req_delta)
end
if tpm > 0 and tok_delta ~= 0 then
  shift(KEYS[2], 60 / tpm, tok_delta)
end
if money ~= 0 then
  add_money(KEYS[3], money, ttl)
end
if #KEYS >= 4 and tonumber(ARGV[8]) ~= 0 then
  add_money(KEYS[4], tonumber(ARGV[8]), ttl)
end
return 1
`)

// moneyScript changes one micro-dollar counter by a signed delta, never
// below zero. KEYS: counter. ARGV: delta, TTL.
var moneyScript = redis.NewScript(gcraLua + `
add_money(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1
`)

// extendScript grows an admitted reservation if everything can take it.
// KEYS: token TAT, identity budget[, global budget]. ARGV: tokens per
// minute, tokens (0 = no check), identity budget, global budget (µ$, 0 = no
// check), cost (µ$), budget TTL seconds. Returns {allowed, reason}: reason 2
// tokens, 3 budget, 4 global budget.
var extendScript = redis.NewScript(gcraLua + `
local tpm = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local global = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local tok_tat, tok_ok, _
if tpm > 0 and tokens > 0 then
  tok_ok, _, _, _, tok_tat = gcra(KEYS[1], tpm, tpm, 60, tokens)
  if not tok_ok then return {0, 2} end
end
if cost > 0 and budget > 0 and tonumber(redis.call("GET", KEYS[2]) or "0") + cost > budget then
  return {0, 3}
end
if cost > 0 and global > 0 and #KEYS >= 3 and tonumber(redis.call("GET", KEYS[3]) or "0") + cost > global then
  return {0, 4}
end
if tpm > 0 and tokens > 0 then
  store_tat(KEYS[1], tok_tat)
end
if cost > 0 and budget > 0 then
  redis.call("INCRBY", KEYS[2], cost)
  redis.call("EXPIRE", KEYS[2], ttl)
end
if cost > 0 and global > 0 and #KEYS >= 3 then
  redis.call("INCRBY", KEYS[3], cost)
  redis.call("EXPIRE", KEYS[3], ttl)
end
return {1, 0}
`)

// settleScript settles one call: shifts the token bucket, changes the budget
// counters by signed deltas and gives the call's concurrency lease back.
// KEYS: token TAT, identity budget, call leases[, global budget]. ARGV:
// tokens per minute, token delta, budget delta (µ$), budget TTL seconds,
// call id ("" = none)[, global delta (µ$)].
var settleScript = redis.NewScript(gcraLua + `
local tpm = tonumber(ARGV[1])
local tok_delta = tonumber(ARGV[2])
local money = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if tpm > 0 and tok_delta ~= 0 then
  shift(KEYS[1], 60 / tpm, tok_delta)
end
if money ~= 0 then
  add_money(KEYS[2], money, ttl)
end
if ARGV[5] ~= "" then
  redis.call("ZREM", KEYS[3], ARGV[5])
end
if #KEYS >= 4 and tonumber(ARGV[6]) ~= 0 then
  add_money(KEYS[4], tonumber(ARGV[6]), ttl)
end
return 1
`)

// releaseScript gives a call's concurrency lease back. KEYS: call leases.
// ARGV: call id.
var releaseScript = redis.NewScript(`
redis.call("ZREM", KEYS[1], ARGV[1])
return 1
`)
