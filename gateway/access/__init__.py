"""Who may call the gateway, which models they may use, how much, and what they used.

    keys.py           `GatewayKey` (name, sha256 digest of its secret, model globs, limits, role), `KeyRing`
    settings.py       auth mode, keys and store choice from `keys:`, `auth:`, `settings:` and API_KEY
    limits.py         `Admission` (a limit check's answer), the x-ratelimit-* headers, the window sizes
    local_limiter.py  request and token windows counted in this process (exact within it)
    usage.py          usage counters per (key, model, route, provider) and the /stats document
    store.py          `UsageStore`, the one interface of the stores, and `UsageBatch`
    sqlite_store.py   embedded store: SQLite file (or memory) in a worker thread + `LocalLimiter`
    redis_store.py    shared store: one Lua script per admission, one MULTI per usage flush
    recorder.py       `UsageRecorder`: the request observer that batches usage for the store
    shadow.py         `ShadowCounts`: would-blocks of limits in `mode: shadow`, counted and logged
    budget_windows.py budget periods (UTC day, UTC month, rolling window), `BudgetState`, the verdict
    budget_ledger.py  budgets counted in this process (memory, SQLite): spend per slot, holds in flight
    redis_budgets.py  the budget Lua of the Redis admission script, and the settle script
    budgets.py        `BudgetHold`: a request's maximum cost, its hold and settle; the 429 budget_exceeded
    controller.py     `AccessController`: authenticate, admit, stats; owns the store and the recorder

A chat request (api/chat.py): `authenticate(headers)` before the body is read (401), then, once the route
is known, `admit(key, match)`: the allowlist (403), then the store checks and counts the key's limits
(429 with Retry-After). Its rate-limit headers go on the answer. When the request ends, the recorder adds
it to the usage batch (tokens from the upstream `usage`, streams included); every `stats_flush_interval`
the batch is committed in the background. With no key configured the app holds no controller for the
chat path (`app.state.access is None`): one attribute check.

Limits, exactly: requests per minute are a sliding 60 s log checked and counted atomically (event loop or
Lua): never more than the limit in any 60 s, under any concurrency. Token limits are checked before a
request but known only after it, so they can be overshot by the requests in flight when the limit is hit,
plus those that finished within the last flush interval. See `limits.py`. A limit in `mode: shadow` is
checked the same way but never refuses: the requests it would have refused are counted (`shadow.py`)
and left out of its window, so the count is what the limit would refuse if it were on.

Budgets (`budget_per_day`, `budget_per_month`, `budget_per_window`, in the prices: currency): before
dispatch a request is priced at its maximum (prompt estimate + max output tokens at the dearest target
of its route) and the store checks and holds that amount in the same atomic step as the limits; when it
ends it is settled exactly once with its real cost (`Exchange.finish`), riding the usage batch.

Stores: `memory` (default) and SQLite files count limits per process; a file keeps usage and the daily
token spend across restarts. Redis counts everything on the server, so replicas share one quota. If the
store fails at run time, requests are admitted without limits (logged, throttled), as Envoy's rate limit
filter does by default: accounting must not take the gateway down.

Secrets: only digests are kept; a key is shown as its name and an 8-hex-digit fingerprint; no message
repeats a presented key; the Redis URL is shown without credentials.
"""
