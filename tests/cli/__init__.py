"""Tests of gateway/cli.py and the commands it dispatches (validate-config, explain, schema, hash-key)."""
