"""The test harness, not tests of the gateway: the provider simulator, the gateway runner, shared helpers."""
