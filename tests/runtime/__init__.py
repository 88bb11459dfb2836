"""Tests of the runtime: hot reload (manager, watcher-driven, SIGHUP) and in-flight tracking across it."""
