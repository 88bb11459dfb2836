"""What the gateway serves from, and how that changes while it runs.

    snapshot.py  `Runtime`: one immutable snapshot (config, routing table, providers, dispatcher), and
                 `RuntimeHolder`, the one reference a reload swaps; a request reads it once
    reload.py    `ReloadManager`: route files -> new runtime -> one swap, last good config kept on errors;
                 the watcher task, SIGHUP, and closing retired providers once they are idle
    inflight.py  `InflightTracker`: requests in flight per config generation (what retirement waits for)

No HTTP here: `api/` counts requests into the tracker (its ASGI middleware) and reads the snapshot.
"""
