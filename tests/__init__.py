"""The gateway's test suite: one folder per package (config/, access/, ...), e2e/ across real sockets,
support/ for the harness; repo-wide checks (architecture, README, compose, bench) at the top."""
