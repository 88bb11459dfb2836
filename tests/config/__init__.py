"""Tests of gateway/config/: loading, interpolation, the schema, diagnostics, the watcher."""
