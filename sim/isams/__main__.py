"""Run the iSAMS simulator: `python -m sim.isams --port 8081 --students 500 --seed 1`."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import uvicorn

from sim.isams.app import SimConfig, create_app

_logger = logging.getLogger("sim.isams")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sim.isams", description="iSAMS REST API simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--students", type=int, default=500, help="pupils to generate")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same school")
    parser.add_argument("--client-id", default=os.environ.get("ISAMS_CLIENT_ID", "sync-client"))
    parser.add_argument(
        "--client-secret",
        default=os.environ.get("ISAMS_CLIENT_SECRET", "sync-secret"),
        help="defaults to $ISAMS_CLIENT_SECRET, else sync-secret",
    )
    parser.add_argument("--token-ttl", type=int, default=3600, help="expires_in, seconds")
    parser.add_argument(
        "--throttle-limit", type=int, default=None, help="requests per window (default: none)"
    )
    parser.add_argument("--throttle-window", type=float, default=3600.0, help="seconds")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of transient 500s")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if args.students < 0:
        parser.error("--students must be zero or more")
    if args.token_ttl < 1:
        parser.error("--token-ttl must be 1 or more")
    if args.throttle_limit is not None and args.throttle_limit < 1:
        parser.error("--throttle-limit must be 1 or more")
    if args.throttle_window <= 0:
        parser.error("--throttle-window must be more than 0")
    if not 0 <= args.error_rate <= 1:
        parser.error("--error-rate must be between 0 and 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Generate the school and serve it until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    config = SimConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl_seconds=args.token_ttl,
        students=args.students,
        seed=args.seed,
        throttle_limit=args.throttle_limit,
        throttle_window_seconds=args.throttle_window,
        error_rate=args.error_rate,
    )
    app = create_app(config)
    school = app.state.sim.school
    _logger.info(
        "iSAMS simulator: %d students, %d contacts, %d staff (seed %d) on http://%s:%d",
        len(school.students),
        len(school.contacts),
        len(school.employees),
        args.seed,
        args.host,
        args.port,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
