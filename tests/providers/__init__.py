"""Tests of gateway/providers/: the upstream request a provider builds and the H1 transport."""
