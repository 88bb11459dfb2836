"""`gateway serve | validate-config | explain | diff | test | replay | schema | hash-key`: options -> config
-> server (or a report).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn

from gateway.access.keys import hash_secret
from gateway.access.settings import multi_process_warning, open_mode_refusal
from gateway.api.app import create_app
from gateway.api.head_fence import HeadFenceProtocol
from gateway.api.server import GatewayServer, bind_listener
from gateway.api.state import app_state
from gateway.config import schema_text
from gateway.config.apis import SHORT_NAMES
from gateway.diff_command import FORMATS as DIFF_FORMATS
from gateway.diff_command import run_diff
from gateway.errors import ConfigError
from gateway.explain_command import run_explain
from gateway.observe.logging import FORMAT_ENV, LEVEL_ENV, configure_logging
from gateway.observe.metrics import multiprocess_directory
from gateway.replay_command import run_replay
from gateway.route_test_command import run_route_tests
from gateway.runtime.limits import raise_open_files_limit
from gateway.validate_command import run_validate

DEFAULT_CONFIG = "routes"
CONFIG_ENV = "GATEWAY_CONFIG"
GRACE_ENV = "GATEWAY_SHUTDOWN_GRACE"
DEFAULT_GRACE = 30.0

logger = logging.getLogger("gateway")


def grace_seconds(value: str) -> float:
    """`--shutdown-grace`: seconds, 0 or more."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible AI gateway")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG), help="route files dir")
    serve.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "9000")))
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--shutdown-grace",
        type=grace_seconds,
        default=os.environ.get(GRACE_ENV, str(DEFAULT_GRACE)),
        help="on SIGTERM, seconds requests in flight may take to finish before streams are ended with an "
        f"error event (default: ${GRACE_ENV} or {DEFAULT_GRACE:g}); a second signal ends the grace",
    )
    serve.add_argument("--no-reload", action="store_true", help="do not watch the config for changes")
    serve.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: $LOG_LEVEL or INFO)")
    serve.add_argument(
        "--log-format", default=None, help="text or json, one object per line (default: $LOG_FORMAT or text)"
    )

    validate = commands.add_parser("validate-config", help="check route files, print errors with positions")
    validate.add_argument("paths", nargs="*", default=[DEFAULT_CONFIG], help="directories or files")
    validate.add_argument("--format", choices=["text", "json", "github"], default="text")
    validate.add_argument(
        "--no-secrets",
        action="store_true",
        help="for CI without the deployment's secrets: an unset ${VAR} is a warning and a placeholder",
    )

    explain = commands.add_parser("explain", help="show which route a model name takes, and its policy")
    explain.add_argument("model", help="the model name a client would send")
    explain.add_argument(
        "--config", default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG), help="route files dir or file"
    )
    explain.add_argument("--format", choices=["text", "json"], default="text")
    explain.add_argument(
        "--api",
        choices=list(SHORT_NAMES),
        default="chat",
        help="the inbound API the request comes in: chat (/v1/chat/completions), messages (/v1/messages), "
        "responses (/v1/responses), embeddings (/v1/embeddings) or completions (/v1/completions)",
    )

    route_tests = commands.add_parser("test", help="check route test files (expected routes, targets, keys)")
    route_tests.add_argument(
        "--config", default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG), help="route files dir or file"
    )
    route_tests.add_argument("files", nargs="*", help="route test files or dirs (default: CONFIG/tests/)")
    route_tests.add_argument("--format", choices=["text", "json", "github"], default="text")

    replay = commands.add_parser("replay", help="which logged requests a candidate config would change")
    replay.add_argument("access_log", help="a JSON access log (LOG_FORMAT=json)")
    replay.add_argument("--config", required=True, help="the candidate config: route files dir or file")
    replay.add_argument("--baseline", help="compare with this config instead of what the log says")
    replay.add_argument("--format", choices=["text", "json"], default="text")
    diff = commands.add_parser(
        "diff", help="the routing change between two configs (directories, or git revisions); exit 1 if any"
    )
    diff.add_argument("old", help="the config before: a directory or file, or a git revision")
    diff.add_argument("new", help="the config after: a directory or file, or a git revision")
    diff.add_argument("path", nargs="?", help="with --git: the config path in both (default routes)")
    diff.add_argument("--git", action="store_true", help="OLD and NEW are git revisions")
    diff.add_argument("--config", help="OLD and NEW are git revisions of this config path")
    diff.add_argument("--format", choices=list(DIFF_FORMATS), default="text")

    commands.add_parser("schema", help="print the JSON Schema of route files")
    commands.add_parser(
        "hash-key", help="read a gateway key on stdin, print its `sha256:` form for `keys: ... secret:`"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "validate-config":
        return run_validate(args.paths, args.format, no_secrets=args.no_secrets)
    if args.command == "explain":
        return run_explain(args.model, [args.config], args.format, api=args.api)
    if args.command == "test":
        return run_route_tests(args.config, args.files, args.format)
    if args.command == "replay":
        return run_replay(args.config, args.access_log, args.baseline, args.format)
    if args.command == "diff":
        path = args.config or args.path
        return run_diff(args.old, args.new, path=path, git=args.git or path is not None, fmt=args.format)
    if args.command == "schema":
        sys.stdout.write(schema_text())
        return 0
    if args.command == "hash-key":  # the key comes on stdin: never in argv, shell history or `ps`
        key = sys.stdin.readline().strip()
        print(hash_secret(key) if key else "gateway: no key on stdin", file=sys.stdout if key else sys.stderr)
        return 0 if key else 1
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    try:
        configure_logging(args.log_level, args.log_format)
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    with multiprocess_directory(args.workers):  # Prometheus multiprocess mode for --workers > 1
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    common = {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": HeadFenceProtocol,  # httptools, with a limit on the bytes of a request head
        "access_log": False,  # the gateway writes its own access line (observe/access_log.py)
        "log_level": "warning",
        "log_config": None,  # uvicorn's loggers keep the handler configure_logging gave them
        "lifespan": "on",
    }
    try:
        app = create_app(args.config, reload=not args.no_reload)  # also validates for --workers > 1
    except ConfigError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        print(f"gateway: config in {args.config} is invalid; not starting", file=sys.stderr)
        return 1
    settings = app_state(app).access_settings
    refusal = open_mode_refusal(settings, args.host)
    if refusal is not None:
        print(f"gateway: {refusal}", file=sys.stderr)
        return 1
    warning = multi_process_warning(settings, args.workers)
    if warning is not None:
        logger.warning("%s", warning)
    if args.workers > 1:
        raise_open_files_limit()  # inherited by the workers
        os.environ[CONFIG_ENV] = args.config
        os.environ["GATEWAY_NO_RELOAD"] = "1" if args.no_reload else ""
        for name, value in ((LEVEL_ENV, args.log_level), (FORMAT_ENV, args.log_format)):
            if value:
                os.environ[name] = value  # workers set up their logging from the environment
        # uvicorn's own shutdown in each worker: bounded by the grace, but without error events.
        uvicorn.run(
            "gateway.api.app:create_app_from_env",
            factory=True,
            workers=args.workers,
            timeout_graceful_shutdown=max(1, round(args.shutdown_grace)),
            **common,
        )
        return 0
    _, after = raise_open_files_limit()
    if after < 4096:
        logger.warning(
            "at most %d open files (ulimit -n): each stream holds two; "
            "raise the limit to serve more than a few hundred streams at once",
            after,
        )
    try:
        listener = bind_listener(args.host, args.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s; not starting", args.host, args.port, exc.strerror or exc)
        return 1
    listening = f"gateway listening on http://{args.host}:{args.port} (config: {args.config})"
    server = GatewayServer(
        uvicorn.Config(app, **common), app_state(app).drain, args.shutdown_grace, listening
    )
    server.run(sockets=[listener])
    return 0 if server.started else 1
