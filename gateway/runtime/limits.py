"""Process limits the gateway's defaults need: each open stream is two sockets (the client's and the
upstream's), so 1,000 streams need ~2,000 file descriptors, beyond the soft limit of 1,024 many systems
start a process with. The soft limit is raised to the hard one (as Go's runtime does since 1.19)."""

from __future__ import annotations

import resource

WANTED_FILES = 65_536


def raise_open_files_limit(wanted: int = WANTED_FILES) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE toward `wanted` (never above the hard limit, never down);
    returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target <= soft:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # a sandbox may refuse: keep what we have
        return soft, soft
    return soft, target
