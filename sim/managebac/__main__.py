"""Run the ManageBac+ simulator: `python -m sim.managebac --port 8082 --token T`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from sim.managebac.app import create_app
from sim.managebac.cohorts import CohortSpec
from sim.managebac.config import DEFAULT_YEAR_GROUPS, SimConfig
from sim.managebac.grades import PRESETS
from sim.managebac.ratelimit import RESET_FORMATS
from sim.managebac.rights import ALL_RIGHTS


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


def parse_token(value: str) -> tuple[str, frozenset[str]]:
    """Parse `TOKEN` (every right) or `TOKEN=students/index,students/show` (those only)."""
    token, sep, rights = value.partition("=")
    if not token:
        raise argparse.ArgumentTypeError(f"expected TOKEN[=RIGHT,...], got {value!r}")
    if not sep:
        return token, ALL_RIGHTS
    return token, frozenset(filter(None, (right.strip() for right in rights.split(","))))


def parse_cohort(value: str) -> CohortSpec:
    """Parse `myp;8=11076103` (grade code = year group id) into a cohort."""
    grade, sep, group_id = value.rpartition("=")
    if not sep or not group_id.isdigit():
        raise argparse.ArgumentTypeError(f"expected PROGRAM;GRADE=ID, got {value!r}")
    try:
        return CohortSpec(id=int(group_id), grade=grade)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"bad cohort {value!r}: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m sim.managebac", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default="sim-token", help="API token with every right")
    parser.add_argument(
        "--extra-token",
        type=parse_token,
        action="append",
        default=[],
        metavar="TOKEN[=RIGHT,...]",
        help="another token, with the rights listed (none listed: every right); repeatable",
    )
    parser.add_argument(
        "--rate-limit", type=int, default=None, help="requests per second per client address"
    )
    parser.add_argument(
        "--rate-limit-per-token", type=int, default=None, help="requests per second per token"
    )
    parser.add_argument(
        "--rate-limit-reset-format",
        choices=RESET_FORMATS,
        default="epoch",
        help="format of X-RateLimit-Reset",
    )
    parser.add_argument(
        "--no-retry-after",
        action="store_true",
        help="send no Retry-After with a 429 (ManageBac+ documents none)",
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 503")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to each request")
    parser.add_argument(
        "--year-groups",
        type=parse_year_groups,
        default=DEFAULT_YEAR_GROUPS,
        help="NC year to year group id, e.g. 7:10209272,8:10209273 (default: years 7-13), "
        "cohorts of the Secondary program (grade codes secondary;7 ...)",
    )
    parser.add_argument(
        "--program",
        choices=sorted(PRESETS),
        action="append",
        default=[],
        help="enable an IB program besides Secondary; repeatable",
    )
    parser.add_argument(
        "--cohort",
        type=parse_cohort,
        action="append",
        default=[],
        metavar="PROGRAM;GRADE=ID",
        help="another year group, e.g. 'myp;8=11076103'; repeatable",
    )
    parser.add_argument(
        "--academic-year",
        type=int,
        default=None,
        help="calendar year the current academic year ends in (default: from the clock)",
    )
    parser.add_argument(
        "--year-groups-listing",
        choices=["active", "all"],
        default="active",
        help="what GET /v2/year-groups lists without ?archived=",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for injected 503s")
    return parser


def config_from(args: argparse.Namespace) -> SimConfig:
    """Build the simulator's configuration from parsed arguments (ValidationError if bad)."""
    return SimConfig(
        token=args.token,
        tokens=dict(args.extra_token),
        year_groups=args.year_groups,
        programs=tuple(PRESETS[code] for code in args.program),
        cohorts=tuple(args.cohort),
        academic_year=args.academic_year,
        year_groups_listing=args.year_groups_listing,
        rate_limit_per_second=args.rate_limit,
        rate_limit_per_token_per_second=args.rate_limit_per_token,
        rate_limit_reset_format=args.rate_limit_reset_format,
        rate_limit_retry_after=not args.no_retry_after,
        error_rate=args.error_rate,
        latency_ms=args.latency_ms,
        random_seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from(args)
    except ValidationError as exc:
        parser.error(str(exc))
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
