"""Every acceptance preset, its thresholds at the edges, and the reasons it gives."""

from __future__ import annotations

import pytest

from autodata.judging.acceptance import PRESETS, REASONS, Decision, check_weak, decide, feedback, preset

D = preset("deployed")


def test_deployed_accepts_the_papers_example():
    d = decide(D, quality_passed=True, weak=[0.4, 0.5, 0.55], strong=[0.8, 0.75, 0.85])
    assert d.accepted and d.stage == "final" and d.reasons == ()
    assert d.weak_mean == pytest.approx(0.4833, abs=1e-3)
    assert d.gap == pytest.approx(0.8 - 0.48333, abs=1e-3)


@pytest.mark.parametrize(
    ("weak", "strong", "codes"),
    [
        ([0.65, 0.65, 0.65], [0.9, 0.9, 0.9], []),  # weak mean exactly 0.65: allowed (<=)
        ([0.66, 0.66, 0.66], None, ["weak_mean_too_high"]),
        ([0.5, 0.5, 0.76], None, ["weak_best_too_high"]),
        ([0.5, 0.5, 0.75], [0.9, 0.9, 0.9], []),  # best weak exactly 0.75: allowed
        ([0.0, 0.3, 0.3], None, ["weak_zero_attempt"]),
        ([0.2, 0.3, 0.3], [0.6, 0.6, 0.6], []),  # strong mean exactly 0.60: allowed
        ([0.2, 0.3, 0.3], [0.59, 0.6, 0.6], ["strong_mean_too_low"]),
        ([0.2, 0.3, 0.3], [0.95, 0.95, 0.95], ["strong_mean_too_high"]),  # 0.95 excluded
        ([0.2, 0.3, 0.3], [0.0, 0.95, 0.95], ["strong_zero_attempt"]),
        ([0.5, 0.5, 0.5], [0.65, 0.65, 0.65], ["gap_too_small"]),
        ([0.45, 0.45, 0.45], [0.65, 0.65, 0.65], []),  # gap 0.20: allowed
        ([0.0, 0.0, 0.0], None, ["weak_zero_attempt"]),  # all-zero attempts
        ([0.15, 0.15, 0.15], [0.35 + 0.3, 0.65, 0.65], []),  # gap 0.5 built from float sums
        ([0.45, 0.45, 0.45], [0.6499999999, 0.65, 0.65], []),  # float noise on the gap boundary
    ],
)
def test_deployed_thresholds_at_the_edges(weak, strong, codes):
    d = decide(D, quality_passed=True, weak=weak, strong=strong if strong is not None else [0.9, 0.9, 0.9])
    if strong is None:
        assert d.stage == "weak"
        assert check_weak(D, weak).codes == codes
    assert d.codes == codes
    assert d.accepted == (codes == [])


def test_quality_failure_stops_first():
    d = decide(D, quality_passed=False, weak=[0.1], strong=[0.9])
    assert (d.accepted, d.stage, d.codes) == (False, "quality", ["quality_failed"])
    assert d.reasons[0].group == "quality"


def test_weak_first_needs_no_strong():
    d = decide(D, quality_passed=True, weak=[0.3, 0.4, 0.5], strong=None)
    assert d.accepted and d.stage == "weak" and d.strong_mean is None
    d = decide(D, quality_passed=True, weak=[0.9, 0.9, 0.9], strong=None)
    assert not d.accepted and d.codes == ["weak_mean_too_high", "weak_best_too_high"]


def test_no_attempts_is_a_rejection_not_a_zero():
    assert decide(D, quality_passed=True, weak=[], strong=None).codes == ["no_attempts"]
    d = decide(D, quality_passed=True, weak=[0.3, 0.4], strong=[])
    assert d.codes == ["no_attempts"] and d.stage == "strong"


def test_several_reasons_and_their_messages():
    d = decide(D, quality_passed=True, weak=[0.3, 0.4, 0.5], strong=[0.0, 0.5, 0.5])
    assert d.codes == ["strong_mean_too_low", "strong_zero_attempt", "gap_too_small"]
    assert d.reasons[0].message == "failed on strong: weak 40%, strong 33%, gap -7 points (strong needs >= 60%)"
    grouped = feedback(d.reasons)
    assert list(grouped) == ["failed_on_strong"] and len(grouped["failed_on_strong"]) == 3
    too_easy = decide(D, quality_passed=True, weak=[0.7, 0.7, 0.7], strong=None)
    assert too_easy.reasons[0].message == "too easy: weak avg 70% > 65%"


def test_prose_preset():
    p = preset("prose")
    assert decide(p, quality_passed=True, weak=[0.4], strong=[0.7]).accepted
    assert decide(p, quality_passed=True, weak=[0.5], strong=[0.9]).codes == ["weak_mean_too_high"]  # < 0.50
    assert decide(p, quality_passed=True, weak=[0.3], strong=[0.64]).codes == ["strong_mean_too_low"]
    assert decide(p, quality_passed=True, weak=[0.49], strong=[0.65]).codes == ["gap_too_small"]
    assert decide(p, quality_passed=True, weak=[0.0], strong=[1.0]).accepted  # prose allows zeros and 100%


def test_verifiable_preset_counts_correct_attempts():
    p = preset("verifiable")
    assert decide(p, quality_passed=True, weak=[1, 0, 0, 0], strong=[1, 1, 1, 0]).accepted
    assert decide(p, quality_passed=True, weak=[1, 1, 0, 0], strong=[1, 1, 1, 1]).codes == ["weak_too_many_correct"]
    assert decide(p, quality_passed=True, weak=[0, 0, 0, 0], strong=[1, 1, 0, 0]).codes == ["strong_too_few_correct"]
    assert decide(p, quality_passed=True, weak=[0, 0, 0, 0], strong=[1, 1, 1, 1]).accepted


def test_code_preset_pass_rates():
    """Scores are fractions of hidden tests passed: weak mean <= 0.5 with no weak attempt passing every
    test, strong mean >= 0.8."""
    p = preset("code")
    assert decide(p, quality_passed=True, weak=[0.5, 0.25, 0.75], strong=[1.0, 0.8, 0.8]).accepted
    assert decide(p, quality_passed=True, weak=[1.0, 0.0, 0.0], strong=[1, 1, 1]).codes == ["weak_too_many_correct"]
    assert decide(p, quality_passed=True, weak=[0.6, 0.6, 0.6], strong=[1, 1, 1]).codes == ["weak_mean_too_high"]
    assert decide(p, quality_passed=True, weak=[0.2, 0.2], strong=[1.0, 0.5]).codes == ["strong_mean_too_low"]
    assert decide(p, quality_passed=True, weak=[0.0, 0.0], strong=[1.0, 1.0]).accepted


def test_judge_preset_code_checks_can_only_veto():
    p = preset("judge", gap_min=0.2)
    ok = decide(p, quality_passed=True, weak=[0.3], strong=[0.8], judge_verdict="accept")
    assert ok.accepted
    vetoed = decide(p, quality_passed=True, weak=[0.7], strong=[0.8], judge_verdict="accept")
    assert vetoed.codes == ["gap_too_small"]
    improve = decide(
        p,
        quality_passed=True,
        weak=[0.1],
        strong=[0.9],
        judge_verdict="improve",
        judge_reasons=["cites the wrong section"],
    )
    assert improve.codes == ["judge_improve"] and "cites the wrong section" in improve.reasons[0].message
    assert (
        "no reason given"
        in decide(p, quality_passed=True, weak=[0.1], strong=[0.9], judge_verdict="improve").reasons[0].message
    )
    with pytest.raises(ValueError, match="needs the loop judge's verdict"):
        decide(p, quality_passed=True, weak=[0.1], strong=[0.9])


def test_overrides_and_unknown_names():
    p = preset("deployed", weak_mean_max=0.5, gap_min=None)
    assert p.weak_mean_max == 0.5 and p.gap_min is None and p.weak_best_max == 0.75
    assert preset("deployed") is PRESETS["deployed"]  # no override: the frozen preset itself
    assert decide(p, quality_passed=True, weak=[0.55], strong=[0.6]).codes == ["weak_mean_too_high"]
    with pytest.raises(ValueError, match="unknown acceptance preset 'strict'; expected one of: deployed, prose"):
        preset("strict")
    with pytest.raises(ValueError, match=r"unknown acceptance threshold\(s\) \['weak_max'\]"):
        preset("deployed", weak_max=0.3)


def test_quality_can_be_optional():
    p = preset("prose", require_quality=False)
    assert decide(p, quality_passed=False, weak=[0.1], strong=[0.9]).accepted


def test_every_reason_code_has_a_group_and_decisions_serialise():
    assert set(REASONS.values()) == {"quality", "too_easy", "broken", "failed_on_strong", "judge"}
    d = decide(D, quality_passed=True, weak=[0.3, 0.4], strong=[0.9, 0.8])
    data = d.to_dict()
    assert data["accepted"] is True and data["stage"] == "final" and data["reasons"] == []
    r = decide(D, quality_passed=False, weak=[], strong=None)
    assert r.to_dict()["reasons"] == [{"code": "quality_failed", "group": "quality", "message": "failed quality check"}]
    assert isinstance(d, Decision)


# --------------------------------------------------------------------------- adaptive stopping


def test_weak_settled_fires_only_on_verdicts_no_later_attempt_can_change():
    from autodata.judging.acceptance import weak_settled

    d = preset("deployed")
    assert not weak_settled(d, [], 3)
    assert weak_settled(d, [0.8], 2)  # best weak above 75 %: rejected whatever follows
    assert weak_settled(d, [0.5, 0.0], 1)  # a zero attempt
    assert not weak_settled(d, [0.7, 0.7], 1)  # a third 0.3 brings the mean to 57 %
    assert weak_settled(d, [0.7, 0.7, 0.7], 0)
    assert weak_settled(preset("prose"), [0.9, 0.9], 1)  # mean >= 60 % even if the last scores 0
    assert not weak_settled(preset("prose"), [0.7, 0.7], 1)
    v = preset("verifiable")
    assert weak_settled(v, [1.0, 1.0], 2) and not weak_settled(v, [1.0, 0.0], 2)


def test_strong_settled_fires_only_on_verdicts_no_later_attempt_can_change():
    from autodata.judging.acceptance import strong_settled

    d = preset("deployed")
    assert not strong_settled(d, [], 3, 0.3)
    assert strong_settled(d, [0.0], 2, 0.3)  # a zero strong attempt
    assert strong_settled(d, [1.0, 1.0, 1.0], 0, 0.3)  # mean 100 %: too easy for strong
    assert not strong_settled(d, [1.0, 1.0], 1, 0.3)
    assert strong_settled(d, [0.1, 0.1], 1, 0.1)  # at best (0.2 + 1) / 3 = 40 % < 60 %
    assert strong_settled(d, [0.5, 0.5], 1, 0.5)  # at best a 17-point gap
    assert not strong_settled(d, [0.7, 0.7], 1, 0.3)
    v = preset("verifiable")
    assert strong_settled(v, [0.0, 0.0], 2, 0.0) and not strong_settled(v, [0.0, 1.0], 2, 0.0)


@pytest.mark.parametrize("name", ["deployed", "prose", "verifiable", "code"])
def test_a_settled_round_is_rejected_by_every_completion(name):
    """Property, on a seeded sample: whenever the rule stops early, the full rule rejects too."""
    import random

    from autodata.judging.acceptance import strong_settled, weak_settled

    p = preset(name)
    rng = random.Random(name)
    grid = [0.0, 0.25, 0.5, 0.65, 0.75, 0.8, 0.95, 1.0]
    checked = 0
    for _ in range(3000):
        k = rng.choice([3, 4])
        n = rng.randint(1, k - 1)
        weak = [rng.choice(grid) for _ in range(k)]
        if weak_settled(p, weak[:n], k - n):
            checked += 1
            for _ in range(20):  # completions, some attempts unscored
                tail = [rng.choice(grid) for _ in range(k - n) if rng.random() < 0.8]
                assert not check_weak(p, weak[:n] + tail).accepted
        full_weak = check_weak(p, weak)
        if not full_weak.accepted:
            continue
        strong = [rng.choice(grid) for _ in range(k)]
        if strong_settled(p, strong[:n], k - n, full_weak.weak_mean):
            checked += 1
            for _ in range(20):
                tail = [rng.choice(grid) for _ in range(k - n) if rng.random() < 0.8]
                assert not decide(p, quality_passed=True, weak=weak, strong=strong[:n] + tail).accepted
    assert checked > 200
