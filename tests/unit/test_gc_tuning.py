"""`prepare_gc_for_serving`: start-up objects leave the collector's view, later ones stay,
and the young generation is collected less often."""

from __future__ import annotations

import gc

from consumers.gc_tuning import YOUNG_GENERATION_THRESHOLD, prepare_gc_for_serving


def _tracked(thing: object) -> bool:
    return any(candidate is thing for candidate in gc.get_objects())


def test_objects_made_before_are_skipped_by_collections_and_later_ones_are_not() -> None:
    startup_object = ["built at start-up"]
    thresholds = gc.get_threshold()
    assert _tracked(startup_object)
    prepare_gc_for_serving()
    try:
        assert gc.get_freeze_count() > 0
        assert not _tracked(startup_object)
        request_object = ["made while serving"]
        assert _tracked(request_object)
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert _tracked(startup_object)
