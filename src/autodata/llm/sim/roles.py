"""Role behaviours of the simulated ladder: challenger, quality verifier, solvers, judge.

The dynamics follow a small latent model, all recomputable from request text alone (no state):

- Every question has a difficulty ``d = difficulty(question)`` in [0.05, 0.95], a hash of its text.
- The challenger aims at a target difficulty: it starts low (first tries are usually too easy),
  each "too easy" in its feedback raises the target, each "failed on strong" lowers it, with
  noise, so refinement can overshoot. It writes several candidate phrasings and keeps the one
  whose difficulty lands nearest the target. Now and then its context leaks the answer.
- A solver of skill ``s`` covers each key point with probability ``0.2 + 0.8 sigmoid(8 (s - d))``
  (much higher when the context leaks) and makes the typical mistake with probability ``0.6 (1 - p)``.
- The judge marks a criterion met when the answer mentions its key term (or makes its mistake),
  with a small seeded error rate, like an imperfect real judge.
- The verifier fails leaky examples 90 % of the time and sound ones 5 % of the time.

Requests are recognised by the response schema name (``ChallengerOutput``, ``QualityVerdict``,
``JudgeMarks``) or, for solvers, by the solver prompt's shape. Defects (invalid JSON, "+8", missing
fields, truncation) are injected into structured answers at the ladder's fault rate.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re

from autodata.llm.sim.ladder import SimOutput, SimRequest, active_fault_rate, inject_fault, register_handler

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
    h = int.from_bytes(hashlib.sha256(("difficulty:" + question.strip()).encode()).digest()[:8], "big")
    return 0.05 + 0.9 * (h / 2**64)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _prompt(req: SimRequest) -> str:
    for m in reversed(req.messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def _block(text: str, tag: str) -> str:
    m = re.search(rf"<{tag}[^>]*>\n?(.*?)\n?</{tag}>", text, re.DOTALL)
    return m.group(1) if m else ""


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


def _key_terms(text: str, rng: random.Random, n: int) -> list[str]:
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


# How a recipe's guidance moves the simulated challenger (the outer loop's improvement to find): some
# phrasings raise the difficulty it aims at from the first round, one overshoots, one curbs leakage.
GUIDANCE_EFFECTS: dict[str, float] = {
    "multi-step": 0.10,
    "counterfactual": 0.06,
    "combine": 0.06,
    "extremely hard": 0.35,
}
NO_LEAK_PHRASE = "never restate"
STRICT_VERIFIER_PHRASE = "names the key points"


def guidance(prompt: str) -> str:
    """The run's guidance block of a challenger or verifier prompt ('' when there is none)."""
    m = re.search(r"^Guidance for this run:\n(.*?)(?:\n\n|\Z)", prompt, re.MULTILINE | re.DOTALL)
    return m.group(1).lower() if m else ""


def _target(prompt: str, rng: random.Random) -> float:
    """Start low; feedback moves the target (with noise, so refinement can overshoot)."""
    g = guidance(prompt)
    target = 0.15 + sum(v for k, v in GUIDANCE_EFFECTS.items() if k in g)
    low = prompt.lower()
    target += 0.15 * low.count("too easy")
    target -= 0.14 * low.count("failed on strong")
    if "harder" in low or "multi-step" in low:
        target += 0.08
    return min(0.95, max(0.05, target + rng.gauss(0, 0.10)))


# --------------------------------------------------------------------------------------- challenger


def challenger(req: SimRequest) -> SimOutput | None:
    if req.schema_name != "ChallengerOutput":
        return None
    rng = req.rng
    prompt = _prompt(req)
    doc = _block(prompt, "document")
    terms = _key_terms(doc, rng, 9)
    target = _target(prompt, rng)
    a, b, c = terms[:3]
    candidates = [t.format(a=a, b=b, c=c) + ("" if v == 0 else f" (case {v})") for t in TEMPLATES for v in range(3)]
    question = min(candidates, key=lambda q: abs(difficulty(q) - target))
    keys = terms[:6]
    leaky = rng.random() < (0.04 if NO_LEAK_PHRASE in guidance(prompt) else 0.15)
    context = (
        f"Consider a study in which {a} and {b} both influence {c}. The setup also involves "
        f"{', '.join(terms[3:6])}, measured under the conditions the study describes."
    )
    if leaky:
        context += f" {LEAK_PHRASE} {', '.join(keys)}."
    rubric = [
        {"criterion": f"mentions '{k}' and explains its role", "weight": w, "category": "key point"}
        for k, w in zip(keys, (5, 4, 3, 3, 2, 2), strict=True)
    ]
    rubric.append(
        {
            "criterion": f"claims that '{terms[6]}' is the same as '{terms[7]}'",
            "weight": -3,
            "category": "typical mistake",
        }
    )
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
    return _structured(req, value)


# --------------------------------------------------------------------------------------- verifier


def verifier(req: SimRequest) -> SimOutput | None:
    if req.schema_name != "QualityVerdict":
        return None
    prompt = _prompt(req)
    context = _block(prompt, "context")
    catch = 0.99 if STRICT_VERIFIER_PHRASE in guidance(prompt) else 0.9
    if LEAK_PHRASE in context and req.rng.random() < catch:
        value = {"verdict": "fail", "issues": ["leakage"], "feedback": "the context states the key points"}
    elif req.rng.random() < 0.05:
        value = {"verdict": "fail", "issues": ["unclear"], "feedback": "the question admits several readings"}
    else:
        value = {"verdict": "pass", "issues": [], "feedback": "grounded and well posed"}
    return _structured(req, value)


# --------------------------------------------------------------------------------------- solver

_SOLVER_SHAPE = re.compile(r"<context>\n(.*?)\n</context>\s*\n+Question: (.+)\Z", re.DOTALL)


def solver(req: SimRequest) -> SimOutput | None:
    if req.schema is not None:
        return None
    prompt = _prompt(req).strip()
    m = _SOLVER_SHAPE.search(prompt)
    if not m:
        return None
    context, question = m.group(1), m.group(2).strip()
    rng = req.rng
    d = difficulty(question)
    p = 0.2 + 0.8 * sigmoid(8.0 * (req.model.skill - d))  # some partial credit even when out of depth
    leaky = LEAK_PHRASE in context
    if leaky:
        p = max(p, 0.9)
    terms = _key_terms(context, random.Random(0), 40)
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

_RUBRIC_LINE = re.compile(r"^\[(\d+)\] (.+)$", re.MULTILINE)


def judge(req: SimRequest) -> SimOutput | None:
    if req.schema_name != "JudgeMarks":
        return None
    prompt = _prompt(req)
    answer = _block(prompt, "answer").lower()
    marks = []
    for idx, criterion in _RUBRIC_LINE.findall(prompt.split("Rubric:", 1)[-1]):
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
    return _structured(req, {"marks": marks})


def _structured(req: SimRequest, value: dict) -> SimOutput:
    out = SimOutput(text=json.dumps(value, ensure_ascii=False), structured=True)
    fault_rng = random.Random(req.rng.random())
    if fault_rng.random() < active_fault_rate(req):
        inject_fault(out, value, req.schema or {}, fault_rng)
    return out


for _handler in (challenger, verifier, judge, solver):
    register_handler(_handler)
