"""Tests of gateway/observe/: the access log, logging setup and metrics (in process and across workers)."""
