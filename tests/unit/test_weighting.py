"""The queue order of each fetch: strict, or drawn in proportion to the weights (Sidekiq's)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procman.queues.weighting import fetch_order, weighted_order

DRAWS = 20_000
WEIGHTS = [("critical", 5), ("default", 3), ("low", 1)]


def sidekiq_order(queues: list[tuple[str, int]], rng: random.Random) -> list[str]:
    """Sidekiq's own procedure: each queue `weight` times, shuffled, first appearances kept."""
    pool = [name for name, weight in queues for _ in range(weight)]
    rng.shuffle(pool)
    return list(dict.fromkeys(pool))


def within(count: int, share: float, draws: int = DRAWS) -> bool:
    """``count`` of ``draws`` is within 5 standard deviations of the expected ``share``."""
    expected = draws * share
    sigma = math.sqrt(draws * share * (1 - share))
    return abs(count - expected) <= 5 * sigma


def test_first_queue_is_drawn_in_proportion_to_the_weights() -> None:
    rng = random.Random(4)
    firsts = Counter(weighted_order(WEIGHTS, rng)[0] for _ in range(DRAWS))
    total = sum(weight for _, weight in WEIGHTS)
    for name, weight in WEIGHTS:
        assert within(firsts[name], weight / total), (name, firsts)


def test_the_low_weight_queue_never_starves() -> None:
    rng = random.Random(5)
    firsts = Counter(weighted_order([("critical", 100), ("low", 1)], rng)[0] for _ in range(DRAWS))
    assert firsts["low"] > 0
    assert within(firsts["low"], 1 / 101)


def test_every_order_matches_sidekiqs_shuffle_and_uniq() -> None:
    """The full orders (not only the first queue) have the distribution of Sidekiq's procedure."""
    ours = Counter(tuple(weighted_order(WEIGHTS, random.Random(i))) for i in range(DRAWS))
    rng = random.Random(6)
    theirs = Counter(tuple(sidekiq_order(WEIGHTS, rng)) for _ in range(DRAWS))
    assert set(ours) == set(theirs)
    for order in theirs:
        share = theirs[order] / DRAWS
        assert within(ours[order], share), (order, ours[order], theirs[order])


def test_exact_second_place_shares() -> None:
    """P(default second | critical first) = 3/4: the draw goes on among the remaining weights."""
    rng = random.Random(7)
    orders = [weighted_order(WEIGHTS, rng) for _ in range(DRAWS)]
    after_critical = [order[1] for order in orders if order[0] == "critical"]
    assert within(after_critical.count("default"), 3 / 4, len(after_critical))


def test_plain_names_keep_strict_order() -> None:
    queues: list[tuple[str, int | None]] = [("critical", None), ("default", None), ("low", None)]
    rng = random.Random(8)
    assert all(fetch_order(queues, rng) == ["critical", "default", "low"] for _ in range(100))


def test_pairs_of_equal_weight_share_evenly() -> None:
    rng = random.Random(9)
    firsts = Counter(fetch_order([("a", 1), ("b", 1)], rng)[0] for _ in range(DRAWS))
    assert within(firsts["a"], 1 / 2)


def test_huge_weights_cost_nothing() -> None:
    order = weighted_order([("a", 10**12), ("b", 1)], random.Random(1))
    assert sorted(order) == ["a", "b"]


def test_a_weight_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="weight must be positive"):
        weighted_order([("a", 0)], random.Random(1))


@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.integers(1, 50)),
        max_size=12,
        unique_by=lambda pair: pair[0],
    ),
    st.integers(0, 2**32),
)
def test_each_queue_appears_exactly_once(queues: list[tuple[str, int]], seed: int) -> None:
    order = weighted_order(queues, random.Random(seed))
    assert sorted(order) == sorted(name for name, _ in queues)
