"""``procman worker --queues``: the same queue-name rule as queues.yml."""

from __future__ import annotations

import pytest

from procman.commands.worker import parse_queues_option
from procman.errors import UsageError


def test_names_and_weights_are_read() -> None:
    assert parse_queues_option("critical, default") == (("critical", None), ("default", None))
    assert parse_queues_option("a.b:5,c-d_e:1") == (("a.b", 5), ("c-d_e", 1))


@pytest.mark.parametrize("spec", ["a b", "a,b c", "é", "a/b:2"])
def test_a_name_the_yaml_would_refuse_is_refused(spec: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_queues_option(spec)
    assert str(caught.value).startswith("the queues option: bad queue name ")
    assert caught.value.hint is not None and "letters, digits" in caught.value.hint


def test_weighted_and_plain_queues_mix_as_in_the_yaml() -> None:
    assert parse_queues_option("critical:5,default") == (("critical", 5), ("default", None))
