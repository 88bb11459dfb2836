"""Budgets in Redis: the Lua that checks and holds them inside the admission script, and the settle script.

The admission script (redis_store.py) runs `BUDGET_CHECK` after the token windows and, once the request
limit admitted the request, `BUDGET_HOLD`: one script, one round trip, with the limit check it already
made. Periods (UTC day and month numbers, the rolling window's bucket indices) are computed in Python by
`budget_windows.period`, the same function the local ledger uses; the holds' expiry uses the server's
clock (`now`, from `TIME`). Settlements are written with the usage batch (`SETTLE`, one call each inside
the flush's MULTI), so settling costs no round trip of its own.

Keys (under `{prefix}:budget:{key}`):
    :holds       hash: hold id -> "amount:mask" (mask: 1 day, 2 month, 4 window; the budgets it counts in)
    :expiry      sorted set: hold id -> expiry (ms, server time)
    :reserved    hash: budget code -> sum of the live holds counted in it
    :day :month :window:<seconds>   hash: slot (day, month number, bucket index) -> spend (nano-units)
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.access.budget_windows import DAY_SECONDS, HOLD_SECONDS, BudgetState, period, place
from gateway.config.budget_models import Budget, BudgetName

CODES: dict[BudgetName, int] = {"budget_per_day": 1, "budget_per_month": 2, "budget_per_window": 4}
_MS = 1000
_MONTH_SECONDS = 31 * DAY_SECONDS
HOLD_MS = HOLD_SECONDS * _MS

# Functions used by the admission and read scripts. KEYS[4..6]: holds, expiry, reserved; KEYS[6 + i]: the
# spend of budget i. `budget_args` gives ARGV from `first`: amount, count, then per budget code, limit,
# shadow, slot (calendar) or oldest bucket (rolling), bucket width in ms (0: calendar).
_FUNCTIONS = """
local function release(hold)
  local held, mask = string.match(hold, '^(%d+):(%d+)$')
  mask = tonumber(mask)
  for _, code in ipairs({1, 2, 4}) do
    if math.floor(mask / code) % 2 == 1 then redis.call('HINCRBY', KEYS[6], code, '-' .. held) end
  end
end

local function release_expired()
  local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
  for _, id in ipairs(expired) do
    local hold = redis.call('HGET', KEYS[4], id)
    if hold then release(hold) redis.call('HDEL', KEYS[4], id) end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now) end
end

-- spent, reserved and (rolling) ms until spend leaving makes room for `amount` (-1: spend alone cannot)
local function budget_state(i, base, amount)
  local code, limit = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local slot, width = tonumber(ARGV[base + 4]), tonumber(ARGV[base + 5])
  local reserved = tonumber(redis.call('HGET', KEYS[6], code) or '0')
  if width == 0 then
    return tonumber(redis.call('HGET', KEYS[6 + i], ARGV[base + 4]) or '0'), reserved, -1
  end
  local flat = redis.call('HGETALL', KEYS[6 + i])
  local buckets, spent = {}, 0
  for j = 1, #flat, 2 do
    local index, value = tonumber(flat[j]), tonumber(flat[j + 1])
    if index < slot then redis.call('HDEL', KEYS[6 + i], flat[j])
    else buckets[#buckets + 1] = {index, value} spent = spent + value end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local retry, left = -1, spent
  for _, bucket in ipairs(buckets) do
    left = left - bucket[2]
    if left + reserved + amount <= limit then retry = (bucket[1] + 60) * width - now break end
  end
  return spent, reserved, retry
end
"""

# After the token windows: sets `exceeded = 4` when an enforced budget refuses; `hold_mask` are the
# budgets the request fits; `budget_out` what the reply carries per budget.
BUDGET_CHECK = """
local amount = tonumber(ARGV[12] or '-1')
local budget_count = tonumber(ARGV[13] or '0')
local hold_mask, budget_out = 0, {}
if exceeded == 0 and amount >= 0 and budget_count > 0 then
  release_expired()
  for i = 1, budget_count do
    local base = 13 + (i - 1) * 5
    local spent, reserved, retry = budget_state(i, base, amount)
    if spent + reserved + amount <= tonumber(ARGV[base + 2]) then
      hold_mask = hold_mask + tonumber(ARGV[base + 1])
    elseif ARGV[base + 3] ~= '1' and exceeded == 0 then
      exceeded = 4
    end
    budget_out[#budget_out + 1] = spent
    budget_out[#budget_out + 1] = reserved
    budget_out[#budget_out + 1] = retry
  end
end
"""

# Once the request limit admitted it: hold `amount` against the budgets in `hold_mask` (id: ARGV[4]).
BUDGET_HOLD = """
local held = 0
if exceeded == 0 and amount >= 0 and budget_count > 0 then
  redis.call('HSET', KEYS[4], ARGV[4], ARGV[12] .. ':' .. hold_mask)
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[13 + budget_count * 5 + 1]), ARGV[4])
  for _, code in ipairs({1, 2, 4}) do
    if math.floor(hold_mask / code) % 2 == 1 then redis.call('HINCRBY', KEYS[6], code, ARGV[12]) end
  end
  for k = 4, 6 do redis.call('PEXPIRE', KEYS[k], tonumber(ARGV[13 + budget_count * 5 + 1]) * 2) end
  held = 1
end
"""

ADMIT_FUNCTIONS = _FUNCTIONS

# KEYS as for the admission (1..3 unused); ARGV[12]: 0, ARGV[13..]: as `budget_args`.
READ = (
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
    + _FUNCTIONS
    + """
release_expired()
local out = {}
for i = 1, tonumber(ARGV[13]) do
  local spent, reserved, retry = budget_state(i, 13 + (i - 1) * 5, 0)
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
return out
"""
)

# KEYS: holds, expiry, reserved, then the spend of each budget. ARGV: hold id ('' = none), cost, count,
# then per budget: slot, the oldest slot to keep, the spend key's lifetime (ms).
SETTLE = """
if ARGV[1] ~= '' then
  local hold = redis.call('HGET', KEYS[1], ARGV[1])
  if hold then
    local held, mask = string.match(hold, '^(%d+):(%d+)$')
    mask = tonumber(mask)
    for _, code in ipairs({1, 2, 4}) do
      if math.floor(mask / code) % 2 == 1 then redis.call('HINCRBY', KEYS[3], code, '-' .. held) end
    end
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
end
for i = 1, tonumber(ARGV[3]) do
  local base = 3 + (i - 1) * 3
  local key = KEYS[3 + i]
  if ARGV[2] ~= '0' then redis.call('HINCRBY', key, ARGV[base + 1], ARGV[2]) end
  local keep = tonumber(ARGV[base + 2])
  for _, slot in ipairs(redis.call('HKEYS', key)) do
    if tonumber(slot) < keep then redis.call('HDEL', key, slot) end
  end
  redis.call('PEXPIRE', key, ARGV[base + 3])
end
return 1
"""


def budget_keys(prefix: str, key: str, budgets: Sequence[Budget]) -> list[str]:
    """holds, expiry, reserved, then one spend hash per budget."""
    base = f"{prefix}:budget:{key}"
    return [f"{base}:holds", f"{base}:expiry", f"{base}:reserved", *(f"{base}:{place(b)}" for b in budgets)]


def budget_args(budgets: Sequence[Budget], amount: int, now: float) -> list[int | str]:
    """ARGV[12..] of the admission script: amount, count, per budget its five values, the hold lifetime."""
    args: list[int | str] = [amount, len(budgets)]
    for budget in budgets:
        window = period(budget, now)
        width = round(window.width * _MS, 3) if budget.window else 0
        args += [CODES[budget.name], budget.limit, "1" if budget.shadow else "0", window.oldest, repr(width)]
    args.append(HOLD_MS)
    return args


def settle_args(
    budgets: Sequence[Budget], hold_id: str | None, cost: int, at: float, now: float
) -> list[int | str]:
    args: list[int | str] = [hold_id or "", cost, len(budgets)]
    for budget in budgets:
        current = period(budget, now)
        keep = current.oldest - (1 if budget.window is None else 0)
        lifetime = budget.window * 2 if budget.window else current.resets_at - now + _MONTH_SECONDS
        args += [period(budget, at).slot, keep, int(lifetime * _MS)]
    return args


def states_of(budgets: Sequence[Budget], values: Sequence[int], now: float) -> list[BudgetState]:
    """The per-budget (spent, reserved, retry ms) of the admission reply as states."""
    states = []
    for index, budget in enumerate(budgets):
        spent, reserved, retry = values[index * 3 : index * 3 + 3]
        window = period(budget, now)
        resets_at = now + retry / _MS if retry >= 0 else window.resets_at
        states.append(BudgetState(budget.name, budget.limit, spent, reserved, resets_at))
    return states
