"""The open-files limit the default capacity needs is raised at startup, never lowered."""

from __future__ import annotations

import resource

import pytest

from gateway.runtime.limits import raise_open_files_limit


def test_the_soft_limit_is_raised_toward_the_hard_one_and_never_lowered() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard open-files limit here is {hard}: nothing to raise toward")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        before, after = raise_open_files_limit(
            wanted=min(4096, hard) if hard != resource.RLIM_INFINITY else 4096
        )
        assert before == 256 and after > 256
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == after
        assert raise_open_files_limit(wanted=128) == (after, after)  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
