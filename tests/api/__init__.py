"""Tests of gateway/api/: the ASGI app's endpoints through the real app."""
