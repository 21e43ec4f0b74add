"""The dashboard's pages across several registries laid end to end (failed, scheduled)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from procman.queues.browse import page_across


@given(
    counts=st.lists(st.integers(min_value=0, max_value=30), max_size=6),
    offset=st.integers(min_value=0, max_value=120),
    limit=st.integers(min_value=0, max_value=40),
)
def test_the_slices_hold_exactly_the_rows_of_the_page(
    counts: list[int], offset: int, limit: int
) -> None:
    rows = [(index, row) for index, count in enumerate(counts) for row in range(count)]
    sliced = [
        (index, row)
        for index, first, last in page_across(counts, offset, limit)
        for row in range(first, last + 1)
    ]
    assert sliced == rows[offset : offset + limit]


def test_a_page_that_spans_two_registries() -> None:
    assert page_across([3, 5, 2], offset=2, limit=4) == [(0, 2, 2), (1, 0, 2)]
