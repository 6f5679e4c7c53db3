"""The Settler: a step tried again while the registry is unavailable, until done."""

from glance_lite import exceptions
from glance_lite.api.settle import Settler


def settler() -> Settler:
    # runs the loop in place, with no waiting worth the name
    return Settler(first_delay=0.001, longest_delay=0.002, start=lambda fn: fn())


def test_a_step_is_tried_again_while_the_registry_is_unavailable():
    answers = iter([exceptions.RegistryUnavailable("down"), False, True])
    calls = []

    def step():
        calls.append(1)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    settler().settle("test", step)
    assert len(calls) == 3


def test_any_other_error_ends_the_attempts():
    calls = []

    def step():
        calls.append(1)
        raise exceptions.Forbidden("no")

    settler().settle("test", step)
    assert len(calls) == 1
