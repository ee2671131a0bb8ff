"""Every exercise check passes its reference solution and fails a typical wrong answer."""

from __future__ import annotations

import pytest

from flashtrade_lib.exercises import Feedback, check, exercises

ALL = exercises()


def test_there_are_exercises() -> None:
    assert "ch00-cores" in ALL


@pytest.mark.parametrize("exercise_id", sorted(ALL))
def test_solution_passes(exercise_id: str) -> None:
    feedback = check(exercise_id, ALL[exercise_id].solution())
    assert isinstance(feedback, Feedback)
    assert feedback.passed, f"{exercise_id}: the reference solution fails: {feedback.message}"


@pytest.mark.parametrize("exercise_id", sorted(ALL))
def test_wrong_answer_fails_with_helpful_feedback(exercise_id: str) -> None:
    feedback = check(exercise_id, ALL[exercise_id].wrong())
    assert not feedback.passed, f"{exercise_id}: a wrong answer passes"
    assert len(feedback.message) > 15, f"{exercise_id}: feedback should say what is wrong"


def test_unknown_exercise_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="ch00-cores"):
        check("no-such-exercise", 1)


def test_an_answer_that_raises_is_feedback_not_a_crash() -> None:
    class Boom(int):
        def __ne__(self, other: object) -> bool:
            raise RuntimeError("learner bug")

    feedback = check("ch00-cores", Boom(1))
    assert not feedback.passed and "RuntimeError" in feedback.message
