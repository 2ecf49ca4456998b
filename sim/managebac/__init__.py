"""ManageBac+ v2 simulator for the demo, tests and benchmarks (docs/design.md §5)."""

from sim.managebac.app import create_app
from sim.managebac.config import SimConfig

__all__ = ["SimConfig", "create_app"]
