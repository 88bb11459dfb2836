"""Tests of gateway/streaming/: the SSE parser, the relay and both streamers, disconnects and GC."""
