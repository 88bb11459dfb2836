"""Retry, failover, timeouts, circuit breaking and health checks: everything between "this route" and "this
provider answered".

    dispatch.py   the attempt loop (`Dispatcher.complete` / `open_stream`) and the per-attempt timeouts
    plan.py       a route prepared once: its usable targets with provider, health, retry rules, timeouts
    strategy.py   the order one request tries targets in: ordered, weighted, round_robin, least_latency
    retry.py      which failures retry and how long to wait (backoff with full jitter, Retry-After)
    deadline.py   total/deadline limits that keep running while a committed stream is relayed
    breaker.py    the circuit breaker (passive health) of one provider
    health.py     `ProviderHealth` (breaker + active check results + latency) and `HealthRegistry`
    checker.py    `HealthChecker`: the background probes, owned by the app's lifespan

State lives in `ProviderHealth`, one per `Provider` object, and is carried across reloads exactly as the
provider (and its pool) is: `HealthRegistry.build(registry, previous)`; the checker follows with
`HealthChecker.sync(registry)`.
"""
