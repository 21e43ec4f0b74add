"""The order in which a worker looks at its queues for the next job.

Weighted queues follow Sidekiq's semantics (``Sidekiq::BasicFetch#queues_cmd``): Sidekiq lists each
queue ``weight`` times, shuffles the list and keeps each queue's first appearance. So on every
fetch the first queue is drawn with probability weight / total, the next from the rest in
proportion to their weights, and so on: a queue of weight 1 next to one of weight 5 comes first in
1 fetch of 6, so it never starves while the others are busy.

``weighted_order`` draws that same distribution without building the repeated list: a random
permutation of the repeated list, read for first appearances, picks its first queue in proportion
to the weights, and the first appearances of the remaining queues are again a uniform shuffle of
their own repeated items. Drawing queue by queue in proportion to the remaining weights is
therefore the same distribution, and its cost does not grow with the weights.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def weighted_order(queues: Sequence[tuple[str, int]], rng: random.Random) -> list[str]:
    """Every queue name once, in an order drawn at random in proportion to the weights."""
    remaining = list(queues)
    for name, weight in remaining:
        if weight < 1:
            raise ValueError(f"queue {name!r}: weight must be positive (got {weight})")
    order: list[str] = []
    total = sum(weight for _, weight in remaining)
    while remaining:
        point = rng.random() * total
        index = 0
        while index < len(remaining) - 1:
            point -= remaining[index][1]
            if point < 0:
                break
            index += 1
        name, weight = remaining.pop(index)
        order.append(name)
        total -= weight
    return order


def fetch_order(queues: Sequence[tuple[str, int | None]], rng: random.Random) -> list[str]:
    """The order for one fetch: as listed when no queue has a weight (strict priority, Sidekiq's
    plain list), otherwise ``weighted_order``."""
    if all(weight is None for _, weight in queues):
        return [name for name, _ in queues]
    return weighted_order([(name, weight or 1) for name, weight in queues], rng)
