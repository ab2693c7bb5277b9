"""The simulated ladder playing the paper's one-shot baselines: Self-Instruct, grounded, CoT Self-Instruct.

What the paper reports about them, and what this module makes the ladder do:

- One pass, no feedback: the generator never learns that its question was too easy, so it aims low.
  Its target difficulty is drawn around a low mean (CoT Self-Instruct a little higher: it reasons
  first), and it keeps the candidate phrasing whose difficulty lands nearest that target.
- Many one-shot questions are look-ups: the context states what the question asks for. Any model,
  weak or strong, finds such answers (the solver handler below covers each stated point with
  probability 0.93 + 0.05 · skill), so weak and strong both score high and the gap is small.
- The rubric often asks for details the context never gives (the writer saw the whole document or
  its own seeds; the solver sees only the context). No solver can earn those criteria, which caps
  weak and strong alike, as the paper's strong scores near 70 % show.
- Self-Instruct has no document: it writes from the vocabulary of the seed tasks it was shown, so
  slots that drew the same seeds produce near-duplicates, as real Self-Instruct data sets do.

- Under the verifiable profile (schema names ending in ``ShortOutput``) the writers pose the same
  machine-readable problems as the profile's challenger, aimed low, and now and then mis-solve their
  own problem: the reference answer is the typical slip, which the strong solver's majority exposes
  (CoT Self-Instruct's Answer-Consistency filter drops exactly those).

Requests are recognised by the titles of their schema classes (``SelfInstructOutput``,
``GroundedOutput``, ``CotSelfInstructOutput`` and their ``…ShortOutput`` forms); the writers read the
``<document>`` block, or for Self-Instruct the ``<example>`` blocks of seed tasks, and fit their rubric
to the ``<rubric_rules>`` block (:func:`fit_rules`). Look-up questions
are recognised by the simulator's own phrasing of them (the simulated writers' data, not a prompt),
which the agentic challenger never writes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from autodata.sim.base import SimOutput, SimRequest, structured
from autodata.sim.exact import RELATIONS, fmt
from autodata.sim.roles import LEAK_PHRASE, difficulty, key_terms


@dataclass(frozen=True, slots=True)
class Style:
    target_mean: float  # where the one-shot writer aims (difficulty in [0.05, 0.95])
    target_sd: float
    lookup: float  # share of questions whose answer the context states
    unstated: tuple[int, ...]  # how many rubric key points the context leaves out (drawn uniformly)
    leak: float  # share of contexts that state the reference answer outright
    question_types: tuple[str, ...]
    skills: tuple[str, ...]


STYLES: dict[str, Style] = {
    "SelfInstructOutput": Style(
        0.08, 0.05, 0.7, (1, 2, 2), 0.08, ("definition", "explanation", "comparison"), ("recall", "summarising")
    ),
    "GroundedOutput": Style(
        0.10, 0.06, 0.65, (1, 2), 0.15, ("factual recall", "definition", "explanation"), ("recall", "reading")
    ),
    "CotSelfInstructOutput": Style(
        0.12,
        0.06,
        0.6,
        (1, 2),
        0.08,
        ("explanation", "comparison", "derivation", "counterfactual"),
        ("causal reasoning", "synthesis", "quantitative reasoning"),
    ),
}

LOOKUP_OPENINGS = (
    "According to the context,",
    "What does the context state about",
    "Which factors does the context list",
    "As the context describes it,",
)
LOOKUP_TEMPLATES = (
    LOOKUP_OPENINGS[0] + " what is said about {a} and {c}?",
    LOOKUP_OPENINGS[1] + " the role of {b}?",
    LOOKUP_OPENINGS[2] + " as affecting {c}?",
    LOOKUP_OPENINGS[3] + " how are {a} and {b} related?",
)
OPEN_TEMPLATES = (
    "What is the role of {a} in {c}?",
    "How does {b} affect {c}?",
    "Explain how {a} relates to {b}.",
    "Why is {a} important for {c}?",
    "What are the main differences between {a} and {b}?",
    "Describe the relationship between {a}, {b} and {c}.",
)
SUFFIXES = ("", " Be specific.", " Explain briefly.", " Refer to the setting given.")


# share of its own problems a one-shot writer gets wrong (CoT Self-Instruct reasons first: fewer)
MISSOLVED = {"SelfInstructShortOutput": 0.2, "GroundedShortOutput": 0.2, "CotSelfInstructShortOutput": 0.12}


def _source_terms(req: SimRequest, n: int) -> list[str]:
    source = req.inputs.get("document") or " ".join(req.inputs.get("examples") or [])  # Self-Instruct: its seeds
    return key_terms(source, req.rng, n)


def short_generator(req: SimRequest, name: str) -> SimOutput:
    """A one-shot writer of the verifiable profile (``name``: its schema class, a key of :data:`MISSOLVED`)."""
    rng = req.rng
    style = STYLES[name.replace("ShortOutput", "Output")]
    a, b, c = _source_terms(req, 3)
    target = min(0.95, max(0.05, rng.gauss(style.target_mean, style.target_sd)))
    candidates = []
    for rel in RELATIONS:
        for _ in range(3):
            x, y = rng.randint(3, 40), rng.randint(2, 30)
            if x != y:
                q = f"With x = {x} and y = {y} for {a} and {b}, the relation {rel} gives {c}. What is {c}?"
                candidates.append((abs(difficulty(q) - target), q, rel, x, y))
    _, question, rel, x, y = min(candidates)
    right, slip = RELATIONS[rel]
    value = slip(Fraction(x), Fraction(y)) if rng.random() < MISSOLVED[name] else right(Fraction(x), Fraction(y))
    answer = fmt(value)
    context = f"The setting relates {a}, {b} and {c} exactly; give {c} as a fraction in lowest terms."
    if rng.random() < style.leak:
        context += f" {LEAK_PHRASE} {c} = {answer}."
    out: dict[str, object] = {
        "question_type": "calculation",
        "reasoning_skills": ["quantitative reasoning"],
        "context": context,
        "question": question,
        "reference_answer": answer,
        "solution": f"Put x = {x} and y = {y} into {rel}: {answer}.",
    }
    if name.startswith("Cot"):
        out = {"reasoning": f"The document links {a} and {b} to {c}; a calculation tests that link.", **out}
    return structured(req, out)


def fit_rules(rubric: list[dict[str, object]], rules: dict[str, int]) -> list[dict[str, object]]:
    """The writer's rubric fitted to the ``<rubric_rules>`` data block (absent: unchanged): weights capped
    at ``max_weight``, positives cut to ``max_positive`` (repeated with a case number up to
    ``min_positive``), negatives cut to ``max_negative`` (repeated up to ``min_negative``)."""
    if not rules:
        return rubric
    cap = max(1, rules.get("max_weight", 10))
    pos = [r for r in rubric if int(r["weight"]) > 0]  # type: ignore[call-overload]
    neg = [r for r in rubric if int(r["weight"]) < 0]  # type: ignore[call-overload]

    def sized(items: list[dict[str, object]], low: int, high: int) -> list[dict[str, object]]:
        n = min(max(len(items), low), high)
        if not items:
            return []
        return [
            {**items[i % len(items)], "criterion": f"{items[i % len(items)]['criterion']}"
             + (f" (case {i // len(items)})" if i >= len(items) else "")}
            for i in range(n)
        ]  # fmt: skip

    pos = sized(pos, rules.get("min_positive", 0), rules.get("max_positive", len(pos)))
    neg = sized(neg, rules.get("min_negative", 0), rules.get("max_negative", len(neg)))
    sign = {id(r): 1 for r in pos}
    return [
        {**r, "weight": (1 if id(r) in sign else -1) * min(cap, abs(int(r["weight"])))}  # type: ignore[call-overload]
        for r in pos + neg
    ]


def generator(req: SimRequest, name: str) -> SimOutput:
    """A one-shot rubric writer (``name``: its schema class, a key of :data:`STYLES`)."""
    style = STYLES[name]
    rng = req.rng
    terms = _source_terms(req, 9)
    a, b, c = terms[:3]
    if rng.random() < style.lookup:
        question = rng.choice(LOOKUP_TEMPLATES).format(a=a, b=b, c=c)
    else:
        target = min(0.95, max(0.05, rng.gauss(style.target_mean, style.target_sd)))
        candidates = [t.format(a=a, b=b, c=c) + s for t in OPEN_TEMPLATES for s in SUFFIXES]
        question = min(candidates, key=lambda q: abs(difficulty(q) - target))
    keys = terms[:6]
    weights = [5, 4, 3, 3, 2, 2]
    rng.shuffle(weights)  # a one-shot writer does not rank its points by importance
    unstated = set(rng.sample(range(3, 6), rng.choice(style.unstated)))  # never the ones the question names
    stated = [k for i, k in enumerate(keys) if i not in unstated]
    context = f"The setting concerns {a}, {b} and {c}. It also involves {', '.join(stated[3:]) or 'nothing further'}."
    if rng.random() < style.leak:
        context += f" {LEAK_PHRASE} {', '.join(keys)}."
    rubric = [
        {"criterion": f"mentions '{k}' and explains its role", "weight": w, "category": "key point"}
        for k, w in zip(keys, weights, strict=True)
    ]
    rubric.append(
        {"criterion": f"claims that '{terms[6]}' is the same as '{terms[7]}'", "weight": -3, "category": "mistake"}
    )
    rubric = fit_rules(rubric, req.inputs.get("rubric_rules") or {})
    value: dict[str, object] = {
        "question_type": rng.choice(style.question_types),
        "reasoning_skills": rng.sample(style.skills, 2),
        "context": context,
        "question": question,
        "reference_answer": " ".join(f"The answer involves {k}." for k in keys),
        "rubric": rubric,
    }
    if name == "CotSelfInstructOutput":
        value = {
            "reasoning": f"The document is about {a} and {b}; a good task connects them to {c}. "
            f"The answer should cover {', '.join(keys)}.",
            **value,
        }
    return structured(req, value)


def is_lookup(question: str) -> bool:
    """True when the question is one of the simulated writers' look-up questions."""
    return question.strip().startswith(LOOKUP_OPENINGS)


def lookup_solver(req: SimRequest) -> SimOutput:
    """Answers to look-up questions: the context states the points, so any model finds nearly all of them."""
    context = req.inputs["context"]
    p = 0.93 + 0.05 * req.model.skill
    said = [t for t in key_terms(context, random.Random(0), 40) if req.rng.random() < p]
    body = " ".join(f"The context says {t} matters." for t in said) or "The context does not say."
    return SimOutput(text=f"[simulated {req.model.name}] {body}")
