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


STRICT, RANDOM, WEIGHTED = "strict", "random", "weighted"


def queue_mode(weights: Sequence[int | None]) -> str:
    """Sidekiq 7's mode (``Sidekiq::Capsule#queues=``) for queues with these weights, a queue
    without a weight counting as 0: all 0 -> strict order as listed; all the same -> random
    (Sidekiq says random when all are 1; equal weights above 1 draw the same uniform order);
    otherwise weighted."""
    values = [weight or 0 for weight in weights]
    if all(value == 0 for value in values):
        return STRICT
    if len(set(values)) == 1:
        return RANDOM
    return WEIGHTED


def fetch_order(queues: Sequence[tuple[str, int | None]], rng: random.Random) -> list[str]:
    """The order for one fetch, by ``queue_mode``: as listed (strict), a uniform shuffle
    (random), or ``weighted_order`` where a queue of weight 0 or none is listed once, as
    Sidekiq lists it (``[weight, 1].max`` copies)."""
    mode = queue_mode([weight for _, weight in queues])
    names = [name for name, _ in queues]
    if mode == STRICT:
        return names
    if mode == RANDOM:
        rng.shuffle(names)
        return names
    return weighted_order([(name, max(weight or 0, 1)) for name, weight in queues], rng)
