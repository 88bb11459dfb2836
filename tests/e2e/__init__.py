"""End to end across real sockets: the provider simulator, the real gateway (uvicorn), a real client."""
