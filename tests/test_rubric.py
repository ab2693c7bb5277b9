"""The scoring formula: clip(Σ wᵢ·mᵢ / Σ_{wᵢ>0} wᵢ, 0, 1), and rubric structure checks."""

from __future__ import annotations

import pytest

from autodata.judging.rubric import Criterion, RubricError, RubricRules, check_rubric, mean, positive_total, score

W = [5, 3, 2, -4]


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        ([1, 1, 1, 0], 1.0),  # everything right, no penalty
        ([0, 0, 0, 0], 0.0),
        ([1, 0, 0, 0], 0.5),
        ([0, 1, 1, 0], 0.5),
        ([1, 1, 1, 1], 0.6),  # a met negative criterion subtracts: (10-4)/10
        ([1, 0, 0, 1], 0.1),  # (5-4)/10
        ([0, 1, 0, 1], 0.0),  # (3-4)/10 clipped at 0
        ([0, 0, 0, 1], 0.0),  # only the penalty: clipped
    ],
)
def test_score_formula(marks, expected):
    assert score(W, marks) == pytest.approx(expected)


def test_normalised_by_positive_weights_only():
    assert positive_total(W) == 10
    assert score([2, -100], [1, 0]) == 1.0


def test_no_positive_weight_scores_zero():
    assert score([], []) == 0.0  # 0/0
    assert score([-2, -3], [1, 0]) == 0.0
    assert score([0, 0], [1, 1]) == 0.0


def test_booleans_are_marks():
    assert score([1, 1], [True, False]) == 0.5


@pytest.mark.parametrize("marks", [[1, 0, 1], [1], [0.5, 1, 0, 0], [2, 0, 0, 0], [-1, 0, 0, 0]])
def test_bad_marks_are_refused(marks):
    with pytest.raises(RubricError):
        score(W, marks)


def test_mean_of_attempts():
    assert mean([0.2, 0.4, 0.9]) == pytest.approx(0.5)
    with pytest.raises(RubricError, match="no attempts"):
        mean([])


def good_rubric():
    return [
        Criterion("names the mechanism", 5, "core"),
        Criterion("gives the bound", 3, "core"),
        Criterion("explains why it fails", 2, "reasoning"),
        Criterion("claims it always works", -4, "error"),
    ]


def test_sound_rubric_has_no_problems():
    assert check_rubric(good_rubric()) == []
    assert good_rubric()[3].negative and not good_rubric()[0].negative


def test_rubric_structure_problems():
    bad = [Criterion("a", 5), Criterion("A ", 0), Criterion("  ", 20), Criterion("b", 3)]
    problems = check_rubric(bad)
    assert "criteria [1] have weight 0; every criterion needs a non-zero integer weight" in problems
    assert not any("negative criteria" in p for p in problems)  # negatives are optional by default
    assert "criterion 2 has weight 20; absolute weights must be 1 to 7" in problems
    assert "criterion 2 has no text" in problems
    assert "criterion 1 repeats criterion 0" in problems
    few = check_rubric([Criterion("a", 1), Criterion("x", -1)])
    assert "1 positive criteria; between 3 and 12 are required" in few
    many = check_rubric([Criterion(f"c{i}", 1) for i in range(3)] + [Criterion(f"n{i}", -1) for i in range(6)])
    assert "6 negative criteria; between 0 and 5 are required" in many
    loose = RubricRules(min_positive=1, min_negative=0)
    assert check_rubric([Criterion("a", 1)], loose) == []


def test_default_rules_follow_the_paper_positive_weights_capped_at_7():
    positive_only = [Criterion("names the mechanism", 7), Criterion("gives the bound", 3), Criterion("why", 1)]
    assert check_rubric(positive_only) == []
    assert check_rubric([*positive_only[:2], Criterion("why", 8)]) != []
    assert check_rubric([*positive_only, Criterion("claims it always works", -7)]) == []  # negatives available


def test_rules_are_configurable_and_shown_as_a_block():
    strict = RubricRules(min_positive=2, max_positive=2, min_negative=1, max_negative=1, max_abs_weight=4)
    assert check_rubric([Criterion("a", 4), Criterion("b", 1), Criterion("c", -4)], strict) == []
    assert len(check_rubric([Criterion("a", 4), Criterion("b", 1)], strict)) == 1
    assert len(check_rubric([Criterion("a", 5), Criterion("b", 1), Criterion("c", -1)], strict)) == 1
    assert strict.as_block() == {
        "min_positive": 2,
        "max_positive": 2,
        "min_negative": 1,
        "max_negative": 1,
        "min_weight": 1,
        "max_weight": 4,
    }
