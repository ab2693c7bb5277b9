"""Role behaviours of the simulated ladder: challenger, quality verifier, solvers, judge.

Each role reads only its contract inputs (:mod:`autodata.sim.contracts`; the dispatcher in
:mod:`autodata.sim.handlers` fills ``SimRequest.inputs``). The dynamics follow a small latent model,
all recomputable from those inputs alone (no state):

- **Difficulty from content.** Every question has a latent difficulty ``d = difficulty(question)`` in
  [0.05, 0.95], a deterministic function of its text: it stands for everything about a question that
  makes it hard and that the simulator does not model, so two phrasings of one idea differ in
  difficulty the way real questions do.
- **A challenger that moves with structured feedback.** It aims at a target difficulty: it starts
  low (0.15: first tries are usually too easy). Each reason code of an earlier rejected round (the
  ``<feedback>`` block) moves the target by the code's group in ``acceptance.REASONS``: ``too_easy``
  +0.15, ``failed_on_strong`` -0.14; a loop judge's ``judge_improve`` moves it by the round's scores
  (weak mean above 60 % +0.15, strong mean below 60 % -0.14). The run's declared directives
  (``<directives>`` block) move it by their documented effects (:data:`DIRECTIVE_EFFECTS`). Gaussian
  noise (sd 0.10) on top, so refinement can overshoot. It writes candidate phrasings and keeps the one
  whose difficulty lands nearest the target. Now and then its context leaks the answer (15 %; 4 %
  under the ``no_answer_terms_in_context`` directive).
- **Solvers whose skill meets the difficulty.** A solver of skill ``s`` covers each key point of the
  context with probability ``0.2 + 0.8 sigmoid(8 (s - d))`` (at least 0.9 when the context leaks) and
  makes the typical mistake with probability ``0.6 (1 - p)``. It sees the ``<context>`` and
  ``<question>`` blocks and nothing else: there is no reference answer in its request.
- **A judge that marks against the rubric.** For each ``[index] criterion`` line of the ``<rubric>``
  block it marks a key-point criterion met when the ``<answer>`` names the criterion's quoted term,
  and a mistake criterion met when the answer makes that mistake; 3 % of its marks are wrong, like an
  imperfect real judge. It reads the ``<question>``, ``<rubric>`` and ``<answer>`` blocks only.
- **A verifier** that fails leaky contexts 90 % of the time (99 % under ``strict_leakage_check``) and
  sound ones 5 % of the time, from the ``<context>`` block.

The simulated challenger writes its criteria in its own data convention (``mentions 'term' …``,
``claims that 'a' is the same as 'b'``) and the simulated judge reads that convention back: it is
how the simulated models talk to each other through the data, not autodata's prompt wording.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

from autodata.judging.acceptance import REASONS
from autodata.sim.base import SimOutput, SimRequest, structured

LEAK_PHRASE = "In short, the answer turns on"
KEY_MARK = re.compile(r"\bmentions '([^']+)'")
MISTAKE_MARK = re.compile(r"\bclaims that '([^']+)' is the same as '([^']+)'")
TEMPLATES = (
    "How does {a} constrain {b} in the setting described, and what follows for {c}?",
    "Why would changing {a} alter the effect of {b} on {c}?",
    "What would happen to {c} if {a} were removed while {b} stayed fixed?",
    "Explain the mechanism by which {a} and {b} together determine {c}.",
    "Under what condition does {a} fail to explain {c}, given {b}?",
    "Derive how {c} depends on {a} when {b} is held constant.",
    "Which assumption about {b} is needed for {a} to account for {c}, and why?",
    "Compare the roles of {a} and {b} in producing {c}.",
)


def difficulty(question: str) -> float:
    """The question's latent difficulty in [0.05, 0.95]: a deterministic function of its text."""
    h = int.from_bytes(hashlib.sha256(("difficulty:" + question.strip()).encode()).digest()[:8], "big")
    return 0.05 + 0.9 * (h / 2**64)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{5,}")
_STOP = frozenset(
    (
        "because",
        "before",
        "between",
        "should",
        "through",
        "without",
        "within",
        "however",
        "therefore",
        "different",
        "results",
        "result",
        "following",
        "several",
        "another",
        "further",
        "figure",
        "figures",
        "table",
        "tables",
        "section",
        "sections",
        "paper",
        "approach",
        "using",
        "based",
        "during",
        "number",
        "within",
        "across",
        "include",
        "includes",
        "including",
        "provide",
        "provides",
        "proposed",
        "present",
        "presented",
        "previous",
        "respectively",
        "example",
        "examples",
        "method",
        "methods",
        "problem",
        "problems",
        "system",
        "systems",
        "important",
        "general",
        "specific",
        "similar",
        "various",
        "whether",
        "second",
        "effect",
        "effects",
        "change",
        "changes",
    )
)
_LATEX = re.compile(r"\\[A-Za-z]+|\$[^$]*\$")


def key_terms(text: str, rng: random.Random, n: int) -> list[str]:
    """``n`` content words of the text, drawn from its 40 most frequent (LaTeX and stop words left out)."""
    counts: dict[str, int] = {}
    for w in _WORD.findall(_LATEX.sub(" ", text[:20000])):
        lw = w.lower()
        if lw not in _STOP:
            counts[lw] = counts.get(lw, 0) + 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))[:40] or ["method", "result", "evidence", "assumption"]
    pool = ranked[:]
    rng.shuffle(pool)
    while len(pool) < n:
        pool.append(f"factor{len(pool)}")
    return pool[:n]


# ------------------------------------------------------------------------------ declared effects

# How the run's declared directives (``loop.directives``, rendered as the ``<directives>`` block) move
# the simulated challenger and verifier: the outer loop's improvement to find offline. The names are
# the config's declared vocabulary (``config.DIRECTIVES``); a test checks that every key here is one.
DIRECTIVE_EFFECTS: dict[str, float] = {
    "multi_step": 0.18,  # questions that combine findings: harder from the first round
    "counterfactual": 0.06,
    "combine_method_result": 0.06,
    "expert_level": 0.35,  # overshoots: the strong solver fails too
}
NO_LEAK_DIRECTIVE = "no_answer_terms_in_context"  # the context leaks 4 % of the time instead of 15 %
STRICT_VERIFIER_DIRECTIVE = "strict_leakage_check"  # the verifier catches 99 % of leaks instead of 90 %
TOO_EASY_STEP, TOO_HARD_STEP = 0.15, -0.14
JUDGE_LINE = 0.6  # a loop judge's rejection reads as too easy above it (weak) or too hard below it (strong)


def directive_names(inputs: dict[str, Any]) -> set[str]:
    """The names in the ``<directives>`` block (entries are ``{"name": …}`` objects or bare names)."""
    out = set()
    for d in inputs.get("directives") or []:
        name = d.get("name") if isinstance(d, dict) else d
        if isinstance(name, str):
            out.add(name)
    return out


def feedback_shift(entries: list[Any]) -> float:
    """How far the structured feedback of earlier rounds moves the challenger's target."""
    shift = 0.0
    for e in entries:
        if not isinstance(e, dict):
            continue
        for code in e.get("codes") or []:
            group = REASONS.get(code)
            if group == "too_easy":
                shift += TOO_EASY_STEP
            elif group == "failed_on_strong":
                shift += TOO_HARD_STEP
            elif group == "judge":
                weak, strong = e.get("weak_mean"), e.get("strong_mean")
                if isinstance(weak, (int, float)) and weak > JUDGE_LINE:
                    shift += TOO_EASY_STEP
                if isinstance(strong, (int, float)) and strong < JUDGE_LINE:
                    shift += TOO_HARD_STEP
    return shift


def target(inputs: dict[str, Any], rng: random.Random) -> float:
    """Start low; declared directives and structured feedback move the target, with noise."""
    names = directive_names(inputs)
    t = 0.15 + sum(v for k, v in DIRECTIVE_EFFECTS.items() if k in names)
    t += feedback_shift(inputs.get("feedback") or [])
    return min(0.95, max(0.05, t + rng.gauss(0, 0.10)))


# --------------------------------------------------------------------------------------- challenger


def rubric_under(rules: dict[str, int], keys: list[str], x: str, y: str) -> list[dict[str, Any]]:
    """Key-point criteria weighted 5, 4, 3, 3, 2, 2 and one typical-mistake criterion weighted -3,
    fitted to the ``<rubric_rules>`` data block: the count of positives clamped to its bounds (extra
    key points repeat with a case number), weights capped at ``max_weight``, the negative kept only
    while ``max_negative`` allows one and as many added as ``min_negative`` asks."""
    cap = max(1, rules.get("max_weight", 10))
    n_pos = min(max(len(keys), rules.get("min_positive", 0)), rules.get("max_positive", len(keys)))
    weights = [5, 4, 3, 3, 2, 2]
    pos = [
        {
            "criterion": f"mentions '{keys[i % len(keys)]}' and explains its role"
            + (f" (case {i // len(keys)})" if i >= len(keys) else ""),
            "weight": min(cap, weights[i % len(weights)]),
            "category": "key point",
        }
        for i in range(max(1, n_pos))
    ]
    n_neg = min(max(1, rules.get("min_negative", 0)), rules.get("max_negative", 1))
    neg = [
        {
            "criterion": f"claims that '{x}' is the same as '{y}'" + (f" (case {j})" if j else ""),
            "weight": -min(cap, 3),
            "category": "typical mistake",
        }
        for j in range(n_neg)
    ]
    return pos + neg


def challenger(req: SimRequest) -> SimOutput:
    rng = req.rng
    terms = key_terms(req.inputs["document"], rng, 9)
    aim = target(req.inputs, rng)
    a, b, c = terms[:3]
    candidates = [t.format(a=a, b=b, c=c) + ("" if v == 0 else f" (case {v})") for t in TEMPLATES for v in range(3)]
    question = min(candidates, key=lambda q: abs(difficulty(q) - aim))
    keys = terms[:6]
    leaky = rng.random() < (0.04 if NO_LEAK_DIRECTIVE in directive_names(req.inputs) else 0.15)
    context = (
        f"Consider a study in which {a} and {b} both influence {c}. The setup also involves "
        f"{', '.join(terms[3:6])}, measured under the conditions the study describes."
    )
    if leaky:
        context += f" {LEAK_PHRASE} {', '.join(keys)}."
    rubric = rubric_under(req.inputs.get("rubric_rules") or {}, keys, terms[6], terms[7])
    value = {
        "question_type": rng.choice(["mechanism explanation", "counterfactual", "derivation", "comparison"]),
        "reasoning_skills": rng.sample(
            ["causal reasoning", "quantitative reasoning", "synthesis", "counterfactual reasoning"], 2
        ),
        "context": context,
        "question": question,
        "reference_answer": " ".join(f"The answer involves {k}." for k in keys),
        "rubric": rubric,
    }
    return structured(req, value)


# --------------------------------------------------------------------------------------- verifier


def verifier(req: SimRequest) -> SimOutput:
    catch = 0.99 if STRICT_VERIFIER_DIRECTIVE in directive_names(req.inputs) else 0.9
    if LEAK_PHRASE in req.inputs["context"] and req.rng.random() < catch:
        value = {"verdict": "fail", "issues": ["leakage"], "feedback": "the context states the key points"}
    elif req.rng.random() < 0.05:
        value = {"verdict": "fail", "issues": ["unclear"], "feedback": "the question admits several readings"}
    else:
        value = {"verdict": "pass", "issues": [], "feedback": "grounded and well posed"}
    return structured(req, value)


# --------------------------------------------------------------------------------------- solver


def solver(req: SimRequest) -> SimOutput:
    context, question = req.inputs["context"], req.inputs["question"].strip()
    rng = req.rng
    d = difficulty(question)
    p = 0.2 + 0.8 * sigmoid(8.0 * (req.model.skill - d))  # some partial credit even when out of depth
    if LEAK_PHRASE in context:
        p = max(p, 0.9)
    terms = key_terms(context, random.Random(0), 40)
    said = [t for t in terms if rng.random() < p]
    parts = [f"[simulated {req.model.name}]"]
    parts += [f"The role of {t} matters here." for t in said]
    words = re.findall(r"[a-z][a-z\-]{5,}", context.lower())
    if len(words) >= 2 and rng.random() < 0.6 * (1 - p):
        x, y = rng.sample(sorted(set(words)), 2)
        parts.append(f"Note that '{x}' is the same as '{y}'.")
    if len(parts) == 1:
        parts.append("The question cannot be settled from the context.")
    return SimOutput(text=" ".join(parts))


# --------------------------------------------------------------------------------------- judge


def judge(req: SimRequest) -> SimOutput:
    answer = req.inputs["answer"].lower()
    marks = []
    for idx, criterion in req.inputs["rubric"]:
        key = KEY_MARK.search(criterion)
        mistake = MISTAKE_MARK.search(criterion)
        if key:
            met = key.group(1).lower() in answer
        elif mistake:
            met = f"'{mistake.group(1).lower()}' is the same as" in answer
        else:
            met = req.rng.random() < 0.5
        if req.rng.random() < 0.03:  # an imperfect judge
            met = not met
        marks.append({"index": int(idx), "met": met, "evidence": key.group(1) if met and key else ""})
    return structured(req, {"marks": marks})
