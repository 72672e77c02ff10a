"""One aggregate vocabulary and one bucket limit: the store's hard bound is the default, and
the ceiling, of the API's `limits.max_buckets`."""

from __future__ import annotations

import numpy as np
import pytest
from historian_helpers import SECOND, T0, batch
from pydantic import ValidationError

from kiln.api.settings import QueryLimits
from kiln.core.errors import QueryTooLargeError
from kiln.historian.maths import aggregates, rollup
from kiln.historian.maths.calendar import MAX_BUCKETS
from kiln.historian.store import DuckDBStore

TAG = "acme/plant/line1/oven/temp"


def test_every_named_aggregate_set_is_part_of_the_one_vocabulary() -> None:
    every = set(aggregates.AGGREGATES)
    assert len(every) == len(aggregates.AGGREGATES)  # no name twice
    assert set(aggregates.EVENT) | set(aggregates.TIME_WEIGHTED) | set(aggregates.DISCRETE) == every
    assert every - set(aggregates.DISCRETE) == rollup.ANSWERABLE
    assert every >= aggregates.NUMERIC_ONLY


def test_a_subset_check_names_what_it_allows() -> None:
    assert aggregates.check_aggregates("avg, max,avg", allowed=aggregates.EVENT) == ["avg", "max"]
    with pytest.raises(ValueError, match=r"'twa': choose from avg, min, max, first, last, count"):
        aggregates.check_aggregates(["twa"], allowed=aggregates.EVENT)


def test_a_store_query_over_the_bucket_limit_says_how_to_narrow(store: DuckDBStore) -> None:
    store.write([batch([(TAG, 1.0, T0)])])
    span = MAX_BUCKETS * SECOND
    # Exactly the limit: aligned buckets of one second over MAX_BUCKETS seconds.
    got = store.aggregate(TAG, T0, T0 + span, SECOND, ["count"])
    assert [(b.start_us, b.values) for b in got] == [(T0, {"count": 1})]
    with pytest.raises(QueryTooLargeError, match=rf"{MAX_BUCKETS + 1} buckets .* the limit is "):
        store.aggregate(TAG, T0, T0 + span + 1, SECOND, ["count"])
    # A range as long as the limit but off the grid cuts one bucket more.
    with pytest.raises(QueryTooLargeError, match="use a longer interval or a shorter range"):
        store.aggregate(TAG, T0 + 1, T0 + span + 1, SECOND, ["count"])
    edges = T0 + SECOND * np.arange(MAX_BUCKETS + 2, dtype=np.int64)
    with pytest.raises(QueryTooLargeError, match=rf"{MAX_BUCKETS + 1} buckets requested"):
        store.summarize([TAG], edges, ["avg"], data_end_us=int(edges[-1]))


def test_the_api_limit_defaults_to_the_store_bound_and_cannot_exceed_it() -> None:
    assert QueryLimits().max_buckets == MAX_BUCKETS
    assert QueryLimits(max_buckets=100).max_buckets == 100
    with pytest.raises(ValidationError, match=f"less than or equal to {MAX_BUCKETS}"):
        QueryLimits(max_buckets=MAX_BUCKETS + 1)
