"""Run the ManageBac+ simulator: `python -m sim.managebac --port 8082 --token T`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from sim.managebac.app import create_app
from sim.managebac.config import DEFAULT_YEAR_GROUPS, SimConfig


def parse_year_groups(value: str) -> dict[int, int]:
    """Parse `7:10209272,8:10209273` into {7: 10209272, 8: 10209273}."""
    groups: dict[int, int] = {}
    for pair in filter(None, (part.strip() for part in value.split(","))):
        year, sep, group_id = pair.partition(":")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected YEAR:ID, got {pair!r}")
        try:
            groups[int(year)] = int(group_id)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected integers in {pair!r}") from exc
    return groups


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m sim.managebac", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default="sim-token", help="API token clients must send")
    parser.add_argument("--rate-limit", type=int, default=None, help="requests per second")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 503")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to each request")
    parser.add_argument(
        "--year-groups",
        type=parse_year_groups,
        default=DEFAULT_YEAR_GROUPS,
        help="NC year to year group id, e.g. 7:10209272,8:10209273 (default: years 7-13)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for injected 503s")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = SimConfig(
            token=args.token,
            year_groups=args.year_groups,
            rate_limit_per_second=args.rate_limit,
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            random_seed=args.seed,
        )
    except ValidationError as exc:
        parser.error(str(exc))
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
