"""Tests of gateway/resilience/: retry policy, failover, the circuit breaker, health state and plans."""
