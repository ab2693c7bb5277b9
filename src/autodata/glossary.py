"""Plain words for the machine-readable rejection codes (``acceptance.REASONS`` and the round errors
``error:<role>``), as the run summary, the report and the README's glossary say them."""

from __future__ import annotations

REJECTIONS: dict[str, str] = {
    "quality_failed": "the quality verifier rejected the question (ambiguous, not grounded, leaks the answer, …)",
    "weak_mean_too_high": "too easy: the weak solver's average score is above the preset's limit",
    "weak_best_too_high": "too easy: the weak solver's best attempt scored above the preset's limit",
    "weak_too_many_correct": "too easy: too many weak attempts were correct",
    "weak_zero_attempt": "a weak attempt scored 0: the question may be unanswerable from its context",
    "strong_mean_too_low": "too hard or broken: the strong solver's average score is below the preset's minimum",
    "strong_too_few_correct": "too hard or broken: too few strong attempts were correct",
    "strong_zero_attempt": "a strong attempt scored 0: the question or its reference answer may be wrong",
    "strong_mean_too_high": "too easy for this preset: the strong solver scored above its upper limit",
    "gap_too_small": "not discriminative: strong minus weak is below the preset's minimum gap",
    "judge_improve": "the loop judge asked for a better question",
    "no_attempts": "no solver attempt could be scored",
}
ERROR_ROLES: dict[str, str] = {
    "challenger": "the challenger's answer was unusable after re-asks",
    "quality_verifier": "the quality verifier gave no usable report",
    "quality_verifier (final pass)": "the final quality check gave no usable report",
    "loop_judge": "the loop judge gave no usable verdict",
}


def rejection_words(code: str) -> str:
    """What a rejection code means, in a few words; the code itself when it is not known."""
    if code in REJECTIONS:
        return REJECTIONS[code]
    if code.startswith("error:"):
        role = code.split(":", 1)[1]
        return ERROR_ROLES.get(role, f"a call of the {role} failed for good in this round")
    return code


def glossary_markdown() -> str:
    """The README's table of rejection codes (kept equal to it by a test)."""
    rows = [f"| `{code}` | {words} |" for code, words in REJECTIONS.items()]
    rows += [f"| `error:{role}` | {words} |" for role, words in ERROR_ROLES.items()]
    return "\n".join(["| code | meaning |", "| --- | --- |", *rows])
