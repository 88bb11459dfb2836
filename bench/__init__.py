"""Benchmarks: a fast mock upstream, load clients, the peers (nginx, LiteLLM) and the runner."""
