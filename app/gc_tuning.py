"""Keep Python's full garbage collections off the objects a process builds at start-up.

After its imports a service process holds some 130,000 objects (pydantic and
FastAPI schemas, SQLAlchemy, pycountry's tables) that live as long as the process. Every
full (generation 2) collection walked them all: under webhook load that was a 60 to 90 ms
pause about twice a second, the whole of the ingest's p99 latency (bench/ingest.py).
`gc.freeze()` moves them to the permanent generation, which collections skip; objects
made afterwards are collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then exempt every surviving object from later collections.

    Call it when start-up is done, just before serving.
    """
    gc.collect()
    gc.freeze()
