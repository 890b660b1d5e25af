"""The evaluator registry: every rule kind the rule models accept has exactly one evaluator."""

from __future__ import annotations

import typing

from transforms.risk.evaluate import EVALUATORS
from transforms.risk.rules import Logic


def _kinds() -> set[str]:
    union = typing.get_args(Logic)[0]  # Annotated[Union[...], discriminator]
    kinds: set[str] = set()
    for model in typing.get_args(union):
        (kind,) = typing.get_args(model.model_fields["kind"].annotation)
        kinds.add(kind)
    return kinds


def test_every_rule_kind_has_an_evaluator_and_no_evaluator_is_orphaned() -> None:
    kinds = _kinds()
    assert len(kinds) >= 6
    assert set(EVALUATORS) == kinds


def test_the_registry_is_what_evaluation_dispatches_on() -> None:
    # a kind without an entry would be a KeyError at evaluation, never a silent skip
    assert all(callable(f) for f in EVALUATORS.values())
    assert len(set(EVALUATORS.values())) == len(EVALUATORS)
