"""The Redis scripts of shared admission. Each runs atomically on the Redis server, so every
node sees one order of admissions, spends and releases (docs/scaling.md).

Layout under the deployment prefix ``P``:

- ``P epoch``: a random value set once per Redis lifetime; a script called with another epoch
  answers "epoch" (Redis restarted and lost the state) and the node recovers.
- ``P recovering``: set for a few seconds after a restart; admission answers "recovering".
- ``P w:<owner>`` wallet hash: ``cid`` (cash ledger account id), ``c`` (cash), ``v:<id>`` and
  ``e:<id>`` (each voucher grant's balance and expiry in ms), ``held`` (open holds, every node).
  Balances are the committed ledger plus the spends that nodes have made and not yet committed.
- ``P k:<key id>`` key spend hash: ``used`` (deductions so far + open holds of the key).
- ``P h:<trace>`` one hold: ``a`` amount, ``ka`` amount counted against the key's cap, ``w``/``k``
  the wallet and key hash names; ``P hx`` a sorted set of holds by expiry (ms).
- ``P r:…`` / ``P t:…`` GCRA "theoretical arrival time" of an RPM / TPM limit (ms, float);
  ``P c:…`` a sorted set of the calls in flight under a concurrency limit, scored by lease expiry.
- ``P ap:<transfer key>``: a transfer posted by the control plane already applied (dedupe).

Numbers are Lua doubles: amounts are exact below 2^53 nano-credits (9 million credits) per
wallet; every increment goes through HINCRBY on integers formatted with ``%.0f``.
"""

from __future__ import annotations

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(x) return string.format('%.0f', x) end
local function incr(key, field, x)
  if x ~= 0 then redis.call('HINCRBY', key, field, int(x)) end
end
local function fields(key)
  local raw = redis.call('HGETALL', key)
  local f = {}
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  return f, #raw
end
-- usable vouchers of a wallet table: {id, balance, expiry} sorted by spend order
local function vouchers(f, now)
  local out = {}
  for k, v in pairs(f) do
    if string.sub(k, 1, 2) == 'v:' then
      local id = string.sub(k, 3)
      local e = f['e:' .. id]
      local exp = e and tonumber(e) or math.huge
      local bal = tonumber(v)
      if bal > 0 and exp > now then table.insert(out, {id, bal, exp}) end
    end
  end
  table.sort(out, function(a, b)
    if a[3] ~= b[3] then return a[3] < b[3] end
    return tonumber(a[1]) < tonumber(b[1])
  end)
  return out
end
local function release_limits(first_key, first_arg, n, trace, correction)
  for i = 0, n - 1 do
    local kind = ARGV[first_arg + 2 * i]
    local limit = tonumber(ARGV[first_arg + 2 * i + 1])
    local key = KEYS[first_key + i]
    if kind == 'c' then
      redis.call('ZREM', key, trace)
    elseif kind == 't' and correction ~= 0 then
      local tat = redis.call('GET', key)
      if tat then
        local ttl = redis.call('PTTL', key)
        local back = tonumber(tat) - correction * 60000 / limit
        if ttl > 0 then redis.call('SET', key, string.format('%.3f', back), 'PX', ttl) end
      end
    end
  end
end
"""

# KEYS: epoch, recovering, wallet, keyspend, hold, hx, limit keys...
# ARGV: epoch, trace, worst, expected, cap (-1: none), hold_ms, ttl_ms, tokens, n, (kind, limit)*n
# -> {0, size} | {1, i, retry_ms, remaining} | {2, available, scope} | {3} wallet unknown
#    | {4} key spend unknown | {5} epoch | {6} recovering | {7, i} request larger than a TPM limit
#    | {8} the call already ended (its node gave up waiting for this script and cancelled it)
ADMIT = (
    _COMMON
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {5} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {6} end
if redis.call('EXISTS', KEYS[5] .. ':done') == 1 then return {8} end
local f, nf = fields(KEYS[3])
if nf == 0 then return {3} end
local cap = tonumber(ARGV[5])
local used = 0
if cap >= 0 then
  local u = redis.call('HGET', KEYS[4], 'used')
  if not u then return {4} end
  used = tonumber(u)
end
local now = now_ms()
local tokens = tonumber(ARGV[8])
local n = tonumber(ARGV[9])
local tats = {}
for i = 1, n do
  local kind = ARGV[8 + 2 * i]
  local limit = tonumber(ARGV[9 + 2 * i])
  local key = KEYS[6 + i]
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= limit then return {1, i, 1000, 0} end
  else
    local cost = 1
    if kind == 't' then
      cost = tokens
      if tokens > limit then return {7, i} end
    end
    local interval = 60000 / limit
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local new = tat + cost * interval
    if new - now > 60000 then
      return {1, i, math.ceil(new - now - 60000), math.floor((60000 - (tat - now)) / interval)}
    end
    tats[i] = new
  end
end
local avail = tonumber(f['c'] or '0') - tonumber(f['held'] or '0')
for _, v in ipairs(vouchers(f, now)) do avail = avail + v[2] end
local scope = 0
if cap >= 0 and cap - used < avail then
  avail = cap - used
  scope = 1
end
local worst = tonumber(ARGV[3])
local expected = tonumber(ARGV[4])
local size
if avail >= worst then size = worst
elseif avail >= expected and avail > 0 then size = avail
else return {2, int(avail), scope} end
local hold_ms = tonumber(ARGV[6])
for i = 1, n do
  local kind = ARGV[8 + 2 * i]
  local key = KEYS[6 + i]
  if kind == 'c' then
    redis.call('ZADD', key, now + hold_ms, ARGV[2])
    redis.call('PEXPIRE', key, hold_ms + 60000)
  else
    redis.call('SET', key, string.format('%.3f', tats[i]), 'PX', 61000)
  end
end
incr(KEYS[3], 'held', size)
redis.call('PEXPIRE', KEYS[3], ARGV[7])
local ks = 0
if cap >= 0 then
  ks = size
  incr(KEYS[4], 'used', size)
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
redis.call('HSET', KEYS[5], 'a', int(size), 'ka', int(ks), 'w', KEYS[3], 'k', KEYS[4])
redis.call('PEXPIRE', KEYS[5], ARGV[7])
redis.call('ZADD', KEYS[6], now + hold_ms, ARGV[2])
return {0, int(size)}
"""
)

# End a call: release its hold and limits, and spend ``amount`` from the wallet in spend order
# (vouchers by soonest expiry, then cash, which may go below zero: the bounded overrun), or
# along the given plan (a replay of a spend made while Redis was away).
# KEYS: epoch, wallet, keyspend, hold, hx, limit keys (n)...
# ARGV: epoch, trace, amount, force, token correction, n, (kind, limit)*n, m, (ledger id, take)*m,
#       tombstone_ms
# -> {-1} epoch | {1} wallet unknown | {2} hold gone, not forced | {3} ended before (a resend)
#    | {0, cid, cash_before, cash_after, vouchers_after, (ledger id, take)*}
# A call ends once: the tombstone "<hold>:done" makes a resend after a timeout (the first try may
# have run after all) a no-op, and makes a late admit of a call its node cancelled refuse.
SPEND = (
    _COMMON
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local trace = ARGV[2]
local amount = tonumber(ARGV[3])
local n = tonumber(ARGV[6])
local done = KEYS[4] .. ':done'
if redis.call('EXISTS', done) == 1 then return {3} end
redis.call('SET', done, '1', 'PX', ARGV[#ARGV])
release_limits(6, 7, n, trace, tonumber(ARGV[5]))
local h = redis.call('HMGET', KEYS[4], 'a', 'ka')
local had = h[1] ~= false and h[1] ~= nil
if had then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], trace)
end
if redis.call('EXISTS', KEYS[2]) == 0 then return {1} end
if had then incr(KEYS[2], 'held', -tonumber(h[1])) end
if not had and ARGV[4] ~= '1' then return {2} end
if redis.call('EXISTS', KEYS[3]) == 1 then
  local ka = had and tonumber(h[2]) or 0
  if had and ka ~= 0 then incr(KEYS[3], 'used', amount - ka)
  elseif not had then incr(KEYS[3], 'used', amount) end
end
local f = fields(KEYS[2])
local cid = f['cid']
local cash_before = tonumber(f['c'] or '0')
local now = now_ms()
local out = {}
local m_at = 7 + 2 * n
local m = tonumber(ARGV[m_at])
if m > 0 then
  for j = 1, m do
    local id = ARGV[m_at + 2 * j - 1]
    local take = tonumber(ARGV[m_at + 2 * j])
    if id == cid then incr(KEYS[2], 'c', -take) else incr(KEYS[2], 'v:' .. id, -take) end
    table.insert(out, id)
    table.insert(out, int(take))
  end
elseif amount > 0 then
  local remaining = amount
  for _, v in ipairs(vouchers(f, now)) do
    if remaining <= 0 then break end
    local take = math.min(v[2], remaining)
    incr(KEYS[2], 'v:' .. v[1], -take)
    table.insert(out, v[1])
    table.insert(out, int(take))
    remaining = remaining - take
  end
  if remaining > 0 then
    incr(KEYS[2], 'c', -remaining)
    table.insert(out, cid)
    table.insert(out, int(remaining))
  end
end
local after = fields(KEYS[2])
local vsum = 0
for _, v in ipairs(vouchers(after, now)) do vsum = vsum + v[2] end
local res = {0, cid, int(cash_before), after['c'] or '0', int(vsum)}
for _, x in ipairs(out) do table.insert(res, x) end
return res
"""
)

# Load a wallet (and a key's spend) from the ledger when Redis does not know it yet; mark the
# control-plane transfers that the loaded balances already contain.
# KEYS: epoch, wallet, keyspend, marker keys...
# ARGV: epoch, ttl_ms, marker_ttl_ms, cid, cash, key_used ('' = leave), nv, (id, balance, expiry|'')*nv
INIT = (
    _COMMON
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local loaded = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'cid', ARGV[4], 'c', ARGV[5], 'held', '0')
  local nv = tonumber(ARGV[7])
  for j = 0, nv - 1 do
    local id = ARGV[8 + 3 * j]
    redis.call('HSET', KEYS[2], 'v:' .. id, ARGV[9 + 3 * j])
    if ARGV[10 + 3 * j] ~= '' then redis.call('HSET', KEYS[2], 'e:' .. id, ARGV[10 + 3 * j]) end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  for i = 4, #KEYS do redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[3]) end
  loaded = 1
end
if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[3], 'used', ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return loaded
"""
)

# A control-plane transfer (credit, top-up, grant, refund, expiry) reaches a known wallet once.
# KEYS: epoch, wallet, marker; ARGV: epoch, marker_ttl_ms, n, (c|v, ledger id, delta, expiry|'')*n
# -> 0 wallet unknown (its next load reads the ledger) | 1 applied | 2 already applied | -1 epoch
APPLY = (
    _COMMON
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if KEYS[3] ~= KEYS[2] and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return 2 end
local n = tonumber(ARGV[3])
for j = 0, n - 1 do
  local kind, id, delta, exp = ARGV[4 + 4 * j], ARGV[5 + 4 * j], tonumber(ARGV[6 + 4 * j]), ARGV[7 + 4 * j]
  if kind == 'c' then incr(KEYS[2], 'c', delta)
  else
    incr(KEYS[2], 'v:' .. id, delta)
    if exp ~= '' then redis.call('HSETNX', KEYS[2], 'e:' .. id, exp) end
  end
end
return 1
"""
)

# Re-register a hold this node still has open, after Redis lost its state (restart).
# KEYS: epoch, wallet, keyspend, hold, hx; ARGV: epoch, trace, amount, key amount, expires ms, ttl
FORCE_HOLD = (
    _COMMON
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
incr(KEYS[2], 'held', tonumber(ARGV[3]))
if ARGV[4] ~= '0' and redis.call('EXISTS', KEYS[3]) == 1 then incr(KEYS[3], 'used', tonumber(ARGV[4])) end
redis.call('HSET', KEYS[4], 'a', ARGV[3], 'ka', ARGV[4], 'w', KEYS[2], 'k', KEYS[3])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[2])
return 1
"""
)

# Release holds past their expiry (their node died or forgot them); the wallet keeps whatever
# was spent, since a spend always happens before its ledger commit.
# KEYS: epoch, hx; ARGV: epoch, prefix, max -> number released
SWEEP = (
    _COMMON
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[3]))
local released = 0
for _, trace in ipairs(due) do
  local hk = ARGV[2] .. 'h:' .. trace
  local h = redis.call('HMGET', hk, 'a', 'ka', 'w', 'k')
  redis.call('ZREM', KEYS[2], trace)
  if h[1] then
    redis.call('DEL', hk)
    if redis.call('EXISTS', h[3]) == 1 then incr(h[3], 'held', -tonumber(h[1])) end
    if h[2] ~= '0' and redis.call('EXISTS', h[4]) == 1 then incr(h[4], 'used', -tonumber(h[2])) end
    released = released + 1
  end
end
return released
"""
)
