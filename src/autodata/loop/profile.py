"""Domain profiles: the same loop, configured for a kind of document and answer.

A profile is a bundle of defaults and templates, not a fork of the loop: the episode's steps ask
the profile which challenger prompt to use, how a solver answer is scored, and which acceptance
preset applies when the config names none.

- ``rubric-qa`` (papers; the default): open questions, a rubric, the judge marks each criterion;
  the ``deployed`` preset.
- ``verifiable``: short exact answers (numbers, fractions, expressions). No judge: each attempt's
  final answer is compared with the reference in code (the ``exact-answer`` scorer,
  :func:`autodata.judging.verifiable.equivalent`), so a score is 1 or 0, and the ``verifiable``
  preset counts correct attempts out of 4.
- ``code``: programming tasks (statement, signature, reference solution, hidden unit tests). The
  ``code-tests`` scorer runs each attempt's code against the tests in the sandbox (no judge); the
  score is the fraction of tests passed and the ``code`` preset applies. Before any solver, the
  reference must pass every test and trivial stubs must fail (``CodeTests.check_example``).
- ``instruction``: general instruction following: an instruction with checkable constraints (word
  counts, JSON, keywords, bullets, language; IFEval-style) checked in code, and a rubric for the rest
  marked by the judge (the ``instruction-checks`` scorer); the ``prose`` preset. Before any solver,
  the reference answer must meet its own constraints.
- ``legal``: rubric questions that apply a document's holding or test to new facts; after the
  solvers a loop judge reads the whole evaluation and says accept or improve (the ``judge`` preset,
  whose code-level checks can only veto an accept).
"""

from __future__ import annotations

from dataclasses import dataclass

from autodata.judging.scoring import RewardStyle, Scorer, scorer

ProfileName = str


@dataclass(frozen=True, slots=True)
class Profile:
    name: ProfileName
    preset: str  # acceptance preset used when the config names none
    k_weak: int
    k_strong: int
    scorer: str  # a name in ``autodata.judging.scoring.SCORERS``: how one answer is scored
    challenger_template: str
    solver_template: str  # a template of ``autodata.judging.templates``
    guidance: str  # which block of domain guidance the challenger prompt includes
    challenger_output: str = ""  # a name in ``autodata.roles.challenger.OUTPUTS``; "" = by the scorer

    @property
    def scoring(self) -> Scorer:
        """The scorer this profile names."""
        return scorer(self.scorer)

    @property
    def reward_style(self) -> RewardStyle:
        """How an RL trainer rewards answers to this profile's examples (verl ``reward_model.style``)."""
        return self.scoring.reward_style


PROFILES: dict[ProfileName, Profile] = {
    "rubric-qa": Profile("rubric-qa", "deployed", 3, 3, "rubric-judge", "challenger.j2", "solver.j2", "papers"),
    "verifiable": Profile(
        "verifiable", "verifiable", 4, 4, "exact-answer", "challenger_short.j2", "solver_short.j2", "verifiable"
    ),
    "legal": Profile("legal", "judge", 3, 3, "rubric-judge", "challenger.j2", "solver.j2", "legal"),
    "instruction": Profile(
        "instruction",
        "prose",
        3,
        3,
        "instruction-checks",
        "challenger_instruction.j2",
        "solver.j2",
        "instruction",
        "instruction",
    ),
    "code": Profile("code", "code", 4, 4, "code-tests", "challenger_code.j2", "solver_code.j2", "code", "code-task"),
}


def profile(name: ProfileName) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of: {', '.join(PROFILES)}") from None
