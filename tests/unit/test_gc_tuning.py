"""`freeze_startup_objects`: start-up objects leave the collector's view, later ones stay."""

from __future__ import annotations

import gc

from app.gc_tuning import freeze_startup_objects


def _tracked(thing: object) -> bool:
    return any(candidate is thing for candidate in gc.get_objects())


def test_objects_made_before_the_freeze_are_skipped_by_collections_and_later_ones_are_not() -> None:
    startup_object = ["built at start-up"]
    assert _tracked(startup_object)
    freeze_startup_objects()
    try:
        assert gc.get_freeze_count() > 0
        assert not _tracked(startup_object)
        request_object = ["made while serving"]
        assert _tracked(request_object)
    finally:
        gc.unfreeze()
    assert _tracked(startup_object)
