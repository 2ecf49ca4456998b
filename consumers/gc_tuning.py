"""Garbage-collector settings for a long-running service process, set once start-up is done.

Two costs showed up under webhook load (bench/ingest.py, measured with `gc.callbacks`):
- After its imports a process holds some 130,000 objects (pydantic and FastAPI schemas,
  SQLAlchemy, pycountry's tables) that live as long as it does, and every full
  (generation 2) collection walked them all: a 60 to 90 ms pause about twice a second, the
  whole of the ingest's p99 latency. `gc.freeze()` moves them to the permanent generation,
  which collections skip; objects made afterwards are collected as before.
- The objects of the requests in flight (a few thousand) kept crossing the young
  generation's threshold of 700 allocations: 5,000 collections in 10 s, 7% of the CPU.
  A threshold of 10,000 makes that a few dozen. Reference counting still frees almost
  everything at once; only reference cycles wait a little longer.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000


def prepare_gc_for_serving() -> None:
    """Collect once, freeze what survives, and raise the young generation's threshold.

    Call it when start-up is done, just before serving.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
