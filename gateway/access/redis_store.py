"""The shared store: limits and usage in Redis, so several gateway processes share one quota.

Each admission is one Lua script (one round trip): it drops expired entries, checks the token windows
and the request log and, when everything is under its limit, records the request, all atomically on the
Redis server, with the server's clock (`TIME`), so replicas with skewed clocks still agree on windows.
Usage rows and token spend are written in the background, one pipelined `MULTI` per flush. Budgets are
checked and held in the same admission script and settled in the same flush (redis_budgets.py).

Keys (all under `settings.stats_store_prefix`, default `gateway`):
    {prefix}:limit:{key}:requests       sorted set: admission times (ms) in the last minute
    {prefix}:limit:{key}:tokens:minute  hash: 1 s bucket -> tokens
    {prefix}:limit:{key}:tokens:day     hash: 15 min bucket -> tokens
    {prefix}:usage:index                set of row ids (JSON [key, model, route, provider, UTC day])
    {prefix}:usage:{row id}             hash of counters
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import cast

import redis.asyncio as redis

from gateway.access import redis_budgets
from gateway.access.budget_windows import BudgetState, judge, period
from gateway.access.keys import KeyLimits
from gateway.access.limits import DAY, DAY_BUCKET, MINUTE, MINUTE_BUCKET, Admission, Exceeded, LimitState
from gateway.access.settings import StoreSettings
from gateway.access.store import Settlement, StoreUnavailable, UsageBatch
from gateway.access.usage import LATENCY_BUCKETS, UsageCounters, UsageKey
from gateway.config.budget_models import Budget
from gateway.config.models import LIMIT_NAMES

_ADMIT_HEAD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, tpd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local minute, minute_width = tonumber(ARGV[5]), tonumber(ARGV[6])
local day, day_width = tonumber(ARGV[7]), tonumber(ARGV[8])
-- 1 = that limit is in shadow mode: over it the request is admitted and reported in `would`
local rpm_shadow, tpm_shadow, tpd_shadow = ARGV[9] == '1', ARGV[10] == '1', ARGV[11] == '1'

local function tokens(key, limit, window, width)
  local span = math.floor(window / width)
  local oldest = math.floor(now / width) - span + 1
  local flat = redis.call('HGETALL', key)
  local buckets, used = {}, 0
  for i = 1, #flat, 2 do
    local index, spent = tonumber(flat[i]), tonumber(flat[i + 1])
    if index < oldest then
      redis.call('HDEL', key, flat[i])
    else
      buckets[#buckets + 1] = {index, spent}
      used = used + spent
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local reset, retry = 0, 0
  if #buckets > 0 then reset = (buckets[#buckets][1] + span) * width - now end
  if used >= limit then
    local left = used
    for _, bucket in ipairs(buckets) do
      left = left - bucket[2]
      if left < limit then retry = (bucket[1] + span) * width - now break end
    end
  end
  return used, reset, retry
end

"""

_ADMIT_TOKENS = """
local exceeded, retry, would = 0, 0, 0
local token_limit, token_remaining, token_reset = 0, 0, 0
if tpd > 0 then
  local used, reset, wait = tokens(KEYS[3], tpd, day, day_width)
  token_limit, token_remaining, token_reset = tpd, math.max(0, tpd - used), reset
  if tpd_shadow then
    if wait > 0 then would = would + 4 end
  elseif wait > retry then exceeded, retry = 3, wait end
end
if tpm > 0 then
  local used, reset, wait = tokens(KEYS[2], tpm, minute, minute_width)
  token_limit, token_remaining, token_reset = tpm, math.max(0, tpm - used), reset
  if tpm_shadow then
    if wait > 0 then would = would + 2 end
  elseif wait > retry then exceeded, retry = 2, wait end
end
"""

_ADMIT_REQUESTS = """
local request_remaining, request_reset = 0, 0
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - minute)
  local count = redis.call('ZCARD', KEYS[1])
  if exceeded == 0 and count < rpm then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], minute)
    request_remaining, request_reset = rpm - count - 1, minute
  else
    request_remaining = math.max(0, rpm - count)
    if count > 0 then
      local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
      request_reset = tonumber(newest[2]) + minute - now
    end
    if exceeded == 0 and rpm_shadow then
      would = would + 1  -- admitted, not added to the log
    elseif exceeded == 0 then
      local freeing = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
      exceeded, retry = 1, tonumber(freeing[2]) + minute - now
    end
  end
end
"""

_ADMIT_RETURN = """
if exceeded ~= 0 then would = 0 end
local out = {exceeded, retry, request_remaining, request_reset, token_limit, token_remaining, token_reset,
  would, held}
for _, value in ipairs(budget_out) do out[#out + 1] = value end
return out
"""

# Tokens, then budgets (refused on either: no request slot is taken), then the request log, then the
# budget hold (refused on requests: nothing is held). Budget parts: redis_budgets.py.
_ADMIT = (
    _ADMIT_HEAD
    + redis_budgets.ADMIT_FUNCTIONS
    + _ADMIT_TOKENS
    + redis_budgets.BUDGET_CHECK
    + _ADMIT_REQUESTS
    + redis_budgets.BUDGET_HOLD
    + _ADMIT_RETURN
)

_SPEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = tonumber(ARGV[1])
redis.call('HINCRBY', KEYS[1], math.floor(now / tonumber(ARGV[2])), tokens)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
redis.call('HINCRBY', KEYS[2], math.floor(now / tonumber(ARGV[4])), tokens)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]) * 2)
return 1
"""

_ADD_USAGE = """
redis.call('SADD', KEYS[2], ARGV[1])
local names = {'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cost', 'cost_estimated'}
for i, name in ipairs(names) do redis.call('HINCRBY', KEYS[1], name, ARGV[i + 1]) end
redis.call('HINCRBYFLOAT', KEYS[1], 'latency_sum', ARGV[8])
if ARGV[9] ~= '' then
  local low = redis.call('HGET', KEYS[1], 'latency_min')
  if not low or tonumber(ARGV[9]) < tonumber(low) then redis.call('HSET', KEYS[1], 'latency_min', ARGV[9]) end
end
local high = redis.call('HGET', KEYS[1], 'latency_max')
if not high or tonumber(ARGV[10]) > tonumber(high) then
  redis.call('HSET', KEYS[1], 'latency_max', ARGV[10])
end
for i = 11, #ARGV do redis.call('HINCRBY', KEYS[1], 'latency_' .. (i - 11), ARGV[i]) end
return 1
"""

_EXCEEDED: dict[int, Exceeded] = {1: "requests_per_minute", 2: "tokens_per_minute", 3: "tokens_per_day"}
_WOULD_BLOCK: tuple[tuple[int, Exceeded], ...] = (
    (4, "tokens_per_day"),
    (2, "tokens_per_minute"),
    (1, "requests_per_minute"),
)
_MS = 1000
_MAX_CONNECTIONS = 32  # per gateway process; one admission holds one for a single round trip
_SOCKET_TIMEOUT = 1.0  # seconds for a connect or a reply of Redis
_POOL_TIMEOUT = 5.0  # seconds to wait for a free connection before the store counts as unavailable


class RedisStore:
    def __init__(self, settings: StoreSettings) -> None:
        self.description = settings.describe()
        self.prefix = settings.prefix
        # A bounded pool that waits for a free connection, rather than failing a burst of requests.
        pool = redis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=_MAX_CONNECTIONS,
            timeout=_POOL_TIMEOUT,
            decode_responses=True,
            # A Redis that is gone or hangs fails a request's admission in bounded time (store_guard.py).
            socket_connect_timeout=_SOCKET_TIMEOUT,
            socket_timeout=_SOCKET_TIMEOUT,
        )
        self._client = redis.Redis(connection_pool=pool)
        self._admit = self._client.register_script(_ADMIT)
        self._spend = self._client.register_script(_SPEND)
        self._add_usage = self._client.register_script(_ADD_USAGE)
        self._settle = self._client.register_script(redis_budgets.SETTLE)
        self._read_budgets = self._client.register_script(redis_budgets.READ)
        self._index = f"{self.prefix}:usage:index"

    async def open(self) -> None:
        try:
            await self._client.ping()
        except (redis.RedisError, OSError) as exc:
            raise await self._unavailable(exc) from None

    async def admit(self, key: str, limits: KeyLimits, amount: int | None = None) -> Admission:
        base = f"{self.prefix}:limit:{key}"
        budgets = limits.budgets if amount is not None else ()
        now = time.time()
        hold_id = os.urandom(8).hex()  # a unique member: two requests in the same ms both count
        try:
            result = await self._admit(
                keys=[
                    f"{base}:requests",
                    f"{base}:tokens:minute",
                    f"{base}:tokens:day",
                    *(redis_budgets.budget_keys(self.prefix, key, budgets) if budgets else ()),
                ],
                args=[
                    limits.requests_per_minute or 0,
                    limits.tokens_per_minute or 0,
                    limits.tokens_per_day or 0,
                    hold_id,
                    int(MINUTE * _MS),
                    int(MINUTE_BUCKET * _MS),
                    int(DAY * _MS),
                    int(DAY_BUCKET * _MS),
                    *("1" if name in limits.shadow else "0" for name in LIMIT_NAMES),
                    *(
                        redis_budgets.budget_args(budgets, amount, now)
                        if budgets and amount is not None
                        else ()
                    ),
                ],
            )
        except (redis.RedisError, OSError) as exc:
            raise await self._unavailable(exc) from None
        values = [int(value) for value in result]
        code, retry, req_remaining, req_reset, token_limit, token_remaining, token_reset, would, held = (
            values[:9]
        )
        requests = None
        if limits.requests_per_minute:
            requests = LimitState(limits.requests_per_minute, req_remaining, req_reset / _MS)
        tokens = LimitState(token_limit, token_remaining, token_reset / _MS) if token_limit else None
        exceeded = _EXCEEDED.get(code)
        would_block = tuple(name for bit, name in _WOULD_BLOCK if would & bit)
        if exceeded is not None or not budgets or amount is None or len(values) == 9:
            return Admission(exceeded is None, requests, tokens, exceeded, retry / _MS, would_block)
        verdict = judge(budgets, redis_budgets.states_of(budgets, values[9:], now), amount)
        if verdict.exceeded is not None:  # the script refused on the same sums (code 4)
            wait = max(0.0, verdict.exceeded.resets_at - now)
            return Admission(False, requests, tokens, retry_after=wait, budget=verdict)
        shadowed = (*would_block, *verdict.would_block)
        return Admission(True, requests, tokens, would_block=shadowed, budget=verdict,
                         hold_id=hold_id if held else None)  # fmt: skip

    def settle(self, settlement: Settlement) -> None:
        """Nothing in this process: the batch carries it to Redis (`commit`)."""

    async def read_budgets(self, key: str, budgets: tuple[Budget, ...]) -> list[BudgetState]:
        now = time.time()
        keys = ["", "", "", *redis_budgets.budget_keys(self.prefix, key, budgets)]
        args = [0] * 11 + redis_budgets.budget_args(budgets, 0, now)
        try:
            values = [int(value) for value in await self._read_budgets(keys=keys, args=args)]
        except (redis.RedisError, OSError) as exc:
            raise await self._unavailable(exc) from None
        return [
            BudgetState(
                budget.name, budget.limit, values[2 * i], values[2 * i + 1], period(budget, now).resets_at
            )
            for i, budget in enumerate(budgets)
        ]

    async def commit(self, batch: UsageBatch) -> None:
        spent: dict[str, int] = {}
        for (key, _second), tokens in batch.spend.items():
            spent[key] = spent.get(key, 0) + tokens
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key, tokens in spent.items():
                    base = f"{self.prefix}:limit:{key}"
                    await self._spend(
                        keys=[f"{base}:tokens:minute", f"{base}:tokens:day"],
                        args=[tokens, int(MINUTE_BUCKET * _MS), int(MINUTE * _MS), int(DAY_BUCKET * _MS),
                              int(DAY * _MS)],
                        client=pipe,
                    )  # fmt: skip
                now = time.time()
                for settled in batch.settlements:
                    await self._settle(
                        keys=redis_budgets.budget_keys(self.prefix, settled.key, settled.budgets),
                        args=redis_budgets.settle_args(
                            settled.budgets, settled.hold_id, settled.cost, settled.at, now
                        ),
                        client=pipe,
                    )
                for row, counters in batch.rows.items():
                    row_id = _row_id(row)
                    await self._add_usage(
                        keys=[f"{self.prefix}:usage:{row_id}", self._index],
                        args=[row_id, *_usage_args(counters)],
                        client=pipe,
                    )
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise await self._unavailable(exc) from None

    async def read_usage(self) -> dict[UsageKey, UsageCounters]:
        # decode_responses=True: members are str (the stubs say `bytes | str`, not knowing the pool's option).
        try:
            row_ids = sorted(cast(set[str], await self._client.smembers(self._index)))
            async with self._client.pipeline(transaction=False) as pipe:
                for row_id in row_ids:
                    pipe.hgetall(f"{self.prefix}:usage:{row_id}")
                hashes = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise await self._unavailable(exc) from None
        out: dict[UsageKey, UsageCounters] = {}
        for row_id, fields in zip(row_ids, hashes, strict=True):
            if fields:
                out[UsageKey(*json.loads(row_id))] = _counters(fields)
        return out

    async def prune(self, before_day: str) -> int:
        # Rows of past days are never written again (a row's day is the UTC day it was counted on), so
        # deleting them races with no replica's writes.
        try:
            row_ids = cast(set[str], await self._client.smembers(self._index))
            old = [row_id for row_id in row_ids if "" < UsageKey(*json.loads(row_id)).day < before_day]
            if old:
                async with self._client.pipeline(transaction=True) as pipe:
                    for row_id in old:
                        pipe.delete(f"{self.prefix}:usage:{row_id}")
                    pipe.srem(self._index, *old)
                    await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise await self._unavailable(exc) from None
        return len(old)

    async def aclose(self) -> None:
        await self._client.aclose(close_connection_pool=True)

    async def _unavailable(self, exc: Exception) -> StoreUnavailable:
        """The error for a failed call. The pool's idle connections are closed with it: after Redis went
        away they are dead sockets (CLOSE_WAIT) that would stay open until each is next used."""
        with contextlib.suppress(Exception):
            await self._client.connection_pool.disconnect(inuse_connections=False)
        return StoreUnavailable(f"{type(exc).__name__}: {exc}")


def _row_id(row: UsageKey) -> str:
    """JSON [key, model, route, provider, day]; rows written before days were kept have no fifth item."""
    parts = [row.key, row.model, row.route, row.provider]
    if row.day:
        parts.append(row.day)
    return json.dumps(parts, separators=(",", ":"))


def _usage_args(counters: UsageCounters) -> list[int | float | str]:
    return [
        counters.requests,
        counters.errors,
        counters.prompt_tokens,
        counters.completion_tokens,
        counters.cost,
        counters.cost_estimated,
        repr(counters.latency_sum),
        "" if counters.latency_min is None else repr(counters.latency_min),
        repr(counters.latency_max),
        *counters.latency_buckets,
    ]


def _counters(fields: dict[str, str]) -> UsageCounters:
    low = fields.get("latency_min")
    return UsageCounters(
        requests=int(fields.get("requests", 0)),
        errors=int(fields.get("errors", 0)),
        prompt_tokens=int(fields.get("prompt_tokens", 0)),
        completion_tokens=int(fields.get("completion_tokens", 0)),
        latency_sum=float(fields.get("latency_sum", 0.0)),
        latency_min=float(low) if low is not None else None,
        latency_max=float(fields.get("latency_max", 0.0)),
        latency_buckets=[int(fields.get(f"latency_{index}", 0)) for index in range(LATENCY_BUCKETS)],
        cost=int(fields.get("cost", 0)),
        cost_estimated=int(fields.get("cost_estimated", 0)),
    )
