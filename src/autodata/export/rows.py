"""Which examples leave a run, and the row layout of each export format.

Selection: once anyone has approved or rejected anything, a run's reviewed state is what counts,
so by default only approved examples are exported; a run nobody reviewed exports every accepted
example. Edited examples are exported with the reviewer's text (the original rides along).
Examples that do not meet the acceptance predicate (a baseline keeps them, marked) and examples a
data-set check flagged (``contamination``, ``dedup``: ``store/flags.py``) stay out unless asked for,
and then carry the reason in a ``flags`` column. Splits are cut by document (``split_by_document``).

Layouts:

- ``examples`` (jsonl, parquet, hf): one row per example with everything the run knows about it.
- ``rl``: the prompt the solvers saw, as chat messages, with the rubric and reference answer for a
  rubric-based reward; the column names TRL's GRPO trainer (``prompt``; every other column is
  passed to reward functions) and verl (``data_source``, ``prompt``, ``ability``, ``reward_model``,
  ``extra_info``) read.
- ``sft``: chat ``messages``: that prompt and the strong solver's best answer, or the reference
  answer when a reviewer edited the question (no solver ever answered the edited one) or no strong
  attempt reached the profile's floor (``score`` then null: nobody scored it).

Each layout's Arrow schema is declared once (``schema``): every format writes it (Parquet, ``datasets``)
or declares it in the dataset card (``write.card_metadata``), whatever is null or empty in the rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from autodata.errors import UserError
from autodata.example import Attempt, Criterion, Example, ReviewedExample, Side, migrate
from autodata.store.reviews import reviewed_example
from autodata.store.run_store import RunStore


class _OfDocument(Protocol):
    document_id: str


E = TypeVar("E", bound=_OfDocument)
REVIEW_RULES = ("auto", "approved", "accepted", "unrejected")
EXTRAS = ("flagged", "failed")
# columns added on request in every layout: the whole trajectory (every round, rejected ones
# with their feedback, as a JSON string) and the solvers' reasoning (in the attempts and trajectory)
COLUMNS = ("trajectory", "reasoning")
INCLUDE_CHOICES = (*REVIEW_RULES, *EXTRAS, *COLUMNS, "all")

RUBRIC = pa.list_(pa.struct([("criterion", pa.string()), ("weight", pa.int64()), ("category", pa.string())]))
ATTEMPTS = pa.list_(
    pa.struct(
        [
            ("answer", pa.string()),
            ("score", pa.float64()),
            ("marks", pa.list_(pa.int64())),
            ("evidence", pa.list_(pa.string())),
        ]
    )
)
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
# the models that made an example, role by role: a list of pairs, not a struct keyed by role, so runs with
# different roles (a judge or not, a loop judge, an agent orchestrator) export the same type
MODELS = pa.list_(pa.struct([("role", pa.string()), ("model", pa.string())]))


@dataclass(slots=True)
class Selection:
    """What leaves the run and what stays, with the count of each reason for staying.

    ``examples``: ``reviewed_example()`` of each chosen example, in run order, with ``flags`` (labels
    of the reasons it would be left out by default: ``contamination:<benchmark>``, ``duplicate``,
    ``failed_acceptance``, ``review_rejected``) and ``flag_reasons`` (the same in words).
    ``excluded``: reason -> examples left out for it (an example can count under several)."""

    examples: list[ReviewedExample]
    include: str  # the review rule applied (auto resolved)
    extras: tuple[str, ...]  # flagged and/or failed, when asked for
    accepted: int  # examples stored in the run
    review_counts: dict[str, int]
    stored: int = 0
    meets_acceptance: int = 0
    flagged: dict[str, int] = field(default_factory=dict)  # flag kind -> examples carrying it
    excluded: dict[str, int] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)  # the data-set checks in force

    @property
    def excluded_total(self) -> int:
        return self.stored - len(self.examples)


def parse_include(include: str | Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``--include`` values (repeatable, or comma-separated) -> (review rule, extras). One review rule
    at most (default ``auto``); ``flagged`` and ``failed`` add what is left out by default; ``all``
    is ``accepted`` + ``flagged`` + ``failed``; ``trajectory`` and ``reasoning`` add columns (never
    implied by ``all``). Raises UserError naming the allowed values."""
    values = [include] if isinstance(include, str) else list(include)
    parts = [p.strip() for v in values for p in v.split(",") if p.strip()] or ["auto"]
    bad = [p for p in parts if p not in INCLUDE_CHOICES]
    if bad:
        raise UserError(f"--include must be one of {', '.join(INCLUDE_CHOICES)}, not {bad[0]!r}")
    if "all" in parts:
        parts = [p for p in parts if p != "all"] + ["accepted", *EXTRAS]
    rules = sorted({p for p in parts if p in REVIEW_RULES})
    if len(rules) > 1:
        raise UserError(f"--include takes one review rule ({', '.join(REVIEW_RULES)}), not {' and '.join(rules)}")
    return (rules[0] if rules else "auto"), tuple(x for x in (*EXTRAS, *COLUMNS) if x in parts)


def select(store: RunStore, include: str | Sequence[str] = "auto") -> Selection:
    """Choose the examples to export. Left out unless asked for: examples a reviewer's decision
    excludes (the review rule), examples that do not meet the acceptance predicate (a baseline keeps
    every solved example, with ``meets_acceptance``; ``--include failed``), and examples a data-set
    check flagged (``contamination``, ``dedup``; ``--include flagged``)."""
    rule, extras = parse_include(include)
    log = store.reviews()
    states = log.states()
    if rule == "auto":
        # "approved" once any example stands approved or rejected (a decision later reopened does not count)
        rule = "approved" if any(s.status != "unreviewed" for s in states.values()) else "accepted"
    flag_log = store.flags()
    current = flag_log.current()
    examples = [reviewed_example(e, states.get(e.id)) for e in store.examples()]
    keep_review = {
        "accepted": lambda s: True,
        "approved": lambda s: s == "approved",
        "unrejected": lambda s: s != "rejected",
    }[rule]
    counts = Counter(e.review.status for e in examples)
    counts["edited"] = sum(1 for e in examples if e.review.edited)
    flagged: Counter[str] = Counter()
    excluded: Counter[str] = Counter()
    chosen = []
    for e in examples:
        labels: list[str] = []
        reasons: list[str] = []
        for f in current.get(e.id, []):
            labels.append(f.label)
            reasons.append(f"{f.kind}: {f.reason}")
            flagged[f.kind] += 1
        passed = e.passes  # the inner loop stores only what passed
        if not passed:
            labels.append("failed_acceptance")
            reasons.append("does not meet the acceptance predicate")
        if e.review.status == "rejected":
            labels.append("review_rejected")
            reasons.append(f"rejected by a reviewer: {e.review.reason}")
        e.flags, e.flag_reasons = labels, reasons
        out = []
        if not keep_review(e.review.status):
            out.append("review")
        if not passed and "failed" not in extras:
            out.append("failed_acceptance")
        if any(lab.split(":")[0] in ("contamination", "duplicate") for lab in labels) and "flagged" not in extras:
            out.extend(sorted({f.kind for f in current.get(e.id, [])}))
        excluded.update(out)
        if not out:
            chosen.append(e)
    return Selection(
        chosen,
        rule,
        extras,
        len(examples),
        dict(counts),
        stored=len(examples),
        meets_acceptance=sum(1 for e in examples if e.passes),
        flagged=dict(flagged),
        excluded=dict(excluded),
        checks=flag_log.checks(),
    )


def split_by_document(
    examples: list[E], spec: dict[str, float], seed: int, groups: dict[str, str] | None = None
) -> dict[str, list[E]]:
    """Assign whole documents to splits, so no document feeds two of them.

    ``spec``: split name -> share (positive, summing to 1). ``groups``: document id -> group key
    (its source file, so two documents of one source stay together); the document id by default.
    Groups are ordered by a seeded hash (stable across runs and Python versions), then cut into
    consecutive blocks of sizes by the largest-remainder rule, each split with a positive share
    getting at least one group while there are groups enough. Examples keep run order in a split."""
    keys = sorted({(groups or {}).get(e.document_id, e.document_id) for e in examples})
    keys.sort(key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    n = len(keys)
    names = list(spec)
    exact = [spec[s] * n for s in names]
    sizes = [int(x) for x in exact]
    for i in sorted(range(len(names)), key=lambda i: exact[i] - sizes[i], reverse=True)[: n - sum(sizes)]:
        sizes[i] += 1
    for i in range(len(names)):  # an empty split with a positive share takes a group from the largest
        if sizes[i] == 0 and n >= len(names):
            big = max(range(len(names)), key=lambda j: sizes[j])
            sizes[big] -= 1
            sizes[i] += 1
    where: dict[str, str] = {}
    start = 0
    for name, size in zip(names, sizes, strict=True):
        for k in keys[start : start + size]:
            where[k] = name
        start += size
    out: dict[str, list[E]] = {name: [] for name in names}
    for e in examples:
        out[where[(groups or {}).get(e.document_id, e.document_id)]].append(e)
    return out


def parse_split(text: str) -> dict[str, float]:
    """``train=0.9,validation=0.05,test=0.05`` -> {name: share}. Raises UserError on a malformed
    spec, a share outside (0, 1], or shares that do not sum to 1 (within 1e-6)."""
    spec: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, eq, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if eq and re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) and share != -1.0 and not 0 < share <= 1:
            raise UserError(f"--split: the share of {name!r} must be in (0, 1], not {value.strip()}")
        if eq and name in spec:
            raise UserError(f"--split: {name!r} is named twice")
        if not eq or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) or not 0 < share <= 1:
            raise UserError(
                f"--split: expected NAME=SHARE,... such as train=0.9,validation=0.05,test=0.05; got {part!r}"
            )
        spec[name] = share
    if abs(sum(spec.values()) - 1) > 1e-6:
        raise UserError(f"--split: the shares must sum to 1, not {sum(spec.values()):g}")
    return spec


def _rubric(items: Sequence[Criterion | dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    out = []
    for c in items:
        c = c.stored() if isinstance(c, Criterion) else c
        out.append(
            {"criterion": str(c["criterion"]), "weight": int(c["weight"]), "category": str(c.get("category") or "")}
        )
    return out


ATTEMPTS_WITH_REASONING = pa.list_(pa.struct([*ATTEMPTS.value_type, ("reasoning", pa.string())]))


def _attempts(side: Side, reasoning: bool = False) -> list[dict[str, Any]]:
    """The side's scored attempts as rows. ``evidence`` is one string per mark ("" where the scorer
    quotes none: exact answers are checked in code), ``reasoning`` "" when the server returned none:
    a value of the column's type in every row, so a JSON reader infers the same type as Parquet holds."""
    out = []
    for a in side.attempts:
        marks = list(a.marks or [])
        row = {
            "answer": a.answer or "",
            "score": a.score,
            "marks": marks,
            "evidence": [str(x or "") for x in a.evidence] if a.evidence is not None else [""] * len(marks),
        }
        if reasoning:
            row["reasoning"] = a.reasoning or ""
        out.append(row)
    return out


def _trajectory(e: Example, *, reasoning: bool) -> str:
    """The episode's rounds as stored, as one JSON string (each attempt's reasoning only when asked)."""
    rounds = [r.stored() for r in e.trajectory]
    if not reasoning:
        for rnd in rounds:
            for side in ("weak", "strong"):
                if rnd.get(side):
                    rnd[side] = [{k: v for k, v in a.items() if k != "reasoning"} for a in rnd[side]]
    return json.dumps(rounds, ensure_ascii=False)


def typed(e: Example | dict[str, Any]) -> ReviewedExample:
    """``e`` as a :class:`~autodata.example.ReviewedExample` (a stored example dict of any version is
    migrated; an example nobody reviewed stands unreviewed)."""
    if isinstance(e, ReviewedExample):
        return e
    data = e.stored() if isinstance(e, Example) else migrate(e)
    return ReviewedExample.model_validate(data)


def example_row(e: Example | dict[str, Any], columns: Sequence[str] = ()) -> dict[str, Any]:
    """One row of the examples layout; ``columns`` (``COLUMNS``): ``reasoning`` adds each attempt's
    reasoning, ``trajectory`` the episode's rounds as a JSON string (reasoning in it only with
    ``reasoning``)."""
    e = typed(e)
    return _example_row(e) | _extra_columns(e, columns)


def _example_row(e: ReviewedExample) -> dict[str, Any]:
    original, review = e.original, e.review
    return {
        "id": e.id,
        "document_id": e.document_id,
        "document_title": e.document_title or "",
        "profile": e.profile or "rubric-qa",
        "question_type": e.question_type or "",
        "reasoning_skills": list(e.reasoning_skills or []),
        "context": e.context,
        "question": e.question,
        "reference_answer": e.reference_answer,
        "rubric": _rubric(e.rubric),
        "ground_truth": ground_truth(e),
        "weak_attempts": _attempts(e.weak),
        "strong_attempts": _attempts(e.strong),
        "weak_mean": e.weak.mean,
        "weak_max": e.weak.max,
        "strong_mean": e.strong.mean,
        "strong_max": e.strong.max,
        "gap": e.gap,
        "rounds": e.rounds,
        "quality_passed": bool(e.quality and e.quality.passed),
        "recipe_hash": e.recipe_hash or "",
        "models": [{"role": role, "model": model} for role, model in e.models.items()],
        "review_status": review.status,
        "review_reason": review.reason or "",
        "reviewer": review.reviewer or "",
        "edited": review.edited,
        # the run's own text before any review edit: the column itself when nothing was edited
        "original_question": original.get("question", e.question),
        "original_reference_answer": original.get("reference_answer", e.reference_answer),
        "original_rubric": _rubric(original.get("rubric", e.rubric)),
        "notes": NOTE_SEPARATOR.join(review.notes),
        "created_at": created_at(e.created_at),
        "meets_acceptance": e.passes,
        **flag_columns(e),
    }


# Typed in every row of every format. A column that is null (or an empty list) in every row has no
# type a JSON reader can infer (``datasets.load_dataset("json")`` gives it the null type, and
# Parquet holds the declared one), so the sparse columns are texts: "" when there is nothing to say.
FLAG_SEPARATOR = ","
NOTE_SEPARATOR = "\n\n"


def flag_columns(e: ReviewedExample) -> dict[str, str]:
    """``flags``: the labels of the reasons the example would be left out by default
    (``contamination:<benchmark>``, ``duplicate``, ``failed_acceptance``, ``review_rejected``),
    comma-separated, "" when none (so ``not row["flags"]`` and ``"duplicate" in row["flags"]`` read
    the same as on a list); ``flag_reasons``: the same in words, one a line."""
    labels = [str(x).replace(FLAG_SEPARATOR, "_") for x in e.flags]
    reasons = "\n".join(e.flag_reasons)
    return {"flags": FLAG_SEPARATOR.join(labels), "flag_reasons": reasons}


def created_at(value: Any) -> str | None:
    """The stored ``created_at`` ("2026-01-31T12:00:00Z", UTC) as "2026-01-31T12:00:00.000Z": a string
    in every format. Without the fraction, JSON readers (pyarrow's, so ``datasets``') infer a
    timestamp from JSONL while Parquet holds a string, and the two cannot be concatenated."""
    if not value:
        return None
    text = str(value)
    return text[:-1] + ".000Z" if len(text) == 20 and text.endswith("Z") else text


def examples_schema(columns: Sequence[str] = ()) -> pa.Schema:
    """The examples layout's Arrow schema; ``columns`` as for :func:`example_row`."""
    return _with_columns(EXAMPLES_SCHEMA, columns)


EXAMPLES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("document_id", pa.string()),
        ("document_title", pa.string()),
        ("profile", pa.string()),
        ("question_type", pa.string()),
        ("reasoning_skills", pa.list_(pa.string())),
        ("context", pa.string()),
        ("question", pa.string()),
        ("reference_answer", pa.string()),
        ("rubric", RUBRIC),
        ("ground_truth", pa.string()),
        ("weak_attempts", ATTEMPTS),
        ("strong_attempts", ATTEMPTS),
        ("weak_mean", pa.float64()),
        ("weak_max", pa.float64()),
        ("strong_mean", pa.float64()),
        ("strong_max", pa.float64()),
        ("gap", pa.float64()),
        ("rounds", pa.int64()),
        ("quality_passed", pa.bool_()),
        ("recipe_hash", pa.string()),
        ("models", MODELS),
        ("review_status", pa.string()),
        ("review_reason", pa.string()),
        ("reviewer", pa.string()),
        ("edited", pa.bool_()),
        ("original_question", pa.string()),
        ("original_reference_answer", pa.string()),
        ("original_rubric", RUBRIC),
        ("notes", pa.string()),
        ("created_at", pa.string()),
        ("meets_acceptance", pa.bool_()),
        ("flags", pa.string()),
        ("flag_reasons", pa.string()),
    ]
)


def prompt_messages(e: Example | dict[str, Any]) -> list[dict[str, str]]:
    """Exactly what the solvers were asked: the messages stored with the example when its solvers were
    sent them, with a reviewer's edited context or question in place (``ReviewedExample.prompt``).
    Never rendered again from a template here (a row stored before the messages were kept has them
    rebuilt once, when it is read: ``example.migrate``)."""
    return typed(e).prompt()


def reward_style(e: Example) -> str:
    """verl's ``reward_model.style``, the one the example's profile's scorer names: ``rule`` when answers
    are checked in code (exact answers, unit tests), ``rubric`` when the judge marks them against the rubric."""
    from autodata.loop.profile import profile

    return profile(e.profile or "rubric-qa").reward_style


def ground_truth(e: Example) -> str:
    """verl's ``reward_model.ground_truth``: what the example's scorer checks an answer against (the
    reference answer; for the code profile, the hidden unit tests)."""
    from autodata.loop.profile import profile

    return profile(e.profile or "rubric-qa").scoring.ground_truth(e.record())


def rl_row(
    e: Example | dict[str, Any], index: int, split: str = "train", columns: Sequence[str] = ()
) -> dict[str, Any]:
    """``index``: the row's place in its split; ``split``: the split it is written to. ``columns``
    (``COLUMNS``): ``trajectory`` adds the episode's rounds as a JSON string, ``reasoning`` the
    solvers' attempts with their reasoning (``weak_attempts``, ``strong_attempts``: stored for audit
    and training; no judge reads an export)."""
    e = typed(e)
    rubric = _rubric(e.rubric)
    row = {
        "data_source": f"autodata/{e.profile or 'rubric-qa'}",
        "prompt": e.prompt(),
        "ability": e.question_type or e.profile or "",
        "reward_model": {"style": reward_style(e), "ground_truth": ground_truth(e)},
        "extra_info": {
            "index": index,
            "split": split,
            "id": e.id,
            "question": e.question,
            "rubric": rubric,
            # what the reward's scorer reads besides the answer, as the filter's did: the context (the judge
            # sees it under loop.judge_sees_context) and the constraints checked in code (instruction profile)
            "context": e.context or "",
            "constraints": json.dumps(e.constraints or [], ensure_ascii=False),
        },
        "id": e.id,
        "profile": e.profile or "rubric-qa",
        "question": e.question,
        "reference_answer": e.reference_answer,
        "rubric": rubric,
        "flags": flag_columns(e)["flags"],
    }
    return row | _extra_columns(e, columns)


def _extra_columns(e: Example, columns: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "reasoning" in columns:
        out["weak_attempts"] = _attempts(e.weak, reasoning=True)
        out["strong_attempts"] = _attempts(e.strong, reasoning=True)
    if "trajectory" in columns:
        out["trajectory"] = _trajectory(e, reasoning="reasoning" in columns)
    return out


def _with_columns(schema: pa.Schema, columns: Sequence[str], *, attempts: bool = True) -> pa.Schema:
    if "reasoning" in columns and attempts:
        for name in ("weak_attempts", "strong_attempts"):
            field_ = pa.field(name, ATTEMPTS_WITH_REASONING)
            i = schema.get_field_index(name)
            schema = schema.set(i, field_) if i >= 0 else schema.append(field_)
    if "trajectory" in columns:
        schema = schema.append(pa.field("trajectory", pa.string()))
    return schema


def rl_schema(columns: Sequence[str] = ()) -> pa.Schema:
    """The rl layout's Arrow schema; ``columns`` as for :func:`rl_row`."""
    return _with_columns(RL_SCHEMA, columns)


RL_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", MESSAGES),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("split", pa.string()),
                    ("id", pa.string()),
                    ("question", pa.string()),
                    ("rubric", RUBRIC),
                    ("context", pa.string()),
                    ("constraints", pa.string()),  # a JSON list of {"kind", "value"}; "[]" when none
                ]
            ),
        ),
        ("id", pa.string()),
        ("profile", pa.string()),
        ("question", pa.string()),
        ("reference_answer", pa.string()),
        ("rubric", RUBRIC),
        ("flags", pa.string()),
    ]
)


def best_strong(e: Example) -> Attempt | None:
    """The strong solver's highest-scoring attempt (the first of equals)."""
    return e.strong.best()


def sft_row(e: Example | dict[str, Any], columns: Sequence[str] = ()) -> dict[str, Any] | None:
    """The chat ``messages`` (the solvers' prompt and the answer to imitate), or None when the example
    has no judged strong answer. ``columns``: ``reasoning`` adds ``reasoning``, the imitated answer's
    reasoning as its server returned it ("" when none, or when the answer is the reference), for
    training a model that thinks before it answers; ``trajectory`` the episode's rounds (JSON)."""
    from autodata.loop.profile import profile

    e = typed(e)
    scoring = profile(e.profile or "rubric-qa").scoring
    question_edited = "question" in e.original
    best = None if question_edited else best_strong(e)
    below_floor = (
        best is not None and best.score is not None and scoring.sft_min_score is not None
        and best.score < scoring.sft_min_score
    )  # fmt: skip
    if best is None and not question_edited:
        return None  # no judged strong answer: nothing to imitate
    if below_floor:  # e.g. code: only a solution that passed every test is imitated, else the reference
        best = None
    answer, source, score = (
        (best.answer or "", "strong_solver", best.score)
        if best
        else (scoring.reference_as_answer(e.record()), "reference_answer", None)
    )
    row = {
        "messages": [*e.prompt(), {"role": "assistant", "content": answer}],
        "id": e.id,
        "answer_source": source,
        "score": score,
        "flags": flag_columns(e)["flags"],
    }
    if "reasoning" in columns:
        row["reasoning"] = (best.reasoning if best else None) or ""
    if "trajectory" in columns:
        row["trajectory"] = _trajectory(e, reasoning="reasoning" in columns)
    return row


def sft_schema(columns: Sequence[str] = ()) -> pa.Schema:
    """The sft layout's Arrow schema; ``columns`` as for :func:`sft_row`."""
    schema = SFT_SCHEMA.append(pa.field("reasoning", pa.string())) if "reasoning" in columns else SFT_SCHEMA
    return _with_columns(schema, columns, attempts=False)


SFT_SCHEMA = pa.schema(
    [
        ("messages", MESSAGES),
        ("id", pa.string()),
        ("answer_source", pa.string()),
        ("score", pa.float64()),
        ("flags", pa.string()),
    ]
)


def table(
    fmt: str, examples: Sequence[Example | dict[str, Any]], split: str = "train", columns: Sequence[str] = ()
) -> pa.Table:
    """The Arrow table of ``examples`` in a layout: ``rl``, ``sft``, or the examples layout (any other
    ``fmt``); ``columns`` (``COLUMNS``) adds the trajectory and reasoning in every layout."""
    if fmt == "rl":
        return pa.Table.from_pylist([rl_row(e, i, split, columns) for i, e in enumerate(examples)], rl_schema(columns))
    if fmt == "sft":
        rows = [r for r in (sft_row(e, columns) for e in examples) if r is not None]
        return pa.Table.from_pylist(rows, schema=sft_schema(columns))
    return pa.Table.from_pylist([example_row(e, columns) for e in examples], schema=examples_schema(columns))


def schema(layout: str, columns: Sequence[str] = ()) -> pa.Schema:
    """The one Arrow schema of a layout (``examples``, ``rl``, ``sft``) with the ``--include`` ``columns``:
    what Parquet and ``datasets`` exports hold and what the dataset card declares (``write.card_metadata``)."""
    if layout == "rl":
        return rl_schema(columns)
    if layout == "sft":
        return sft_schema(columns)
    return examples_schema(columns)


def untyped_in_json(tbl: pa.Table) -> list[str]:
    """The columns (dotted paths into structs, ``[]`` for a list's items) a JSON reader cannot type from
    ``tbl`` written as JSON lines: null in every row, or lists empty in every row. pyarrow's JSON reader
    (and so ``datasets.load_dataset("json")``) infers the null type for them where the schema declares
    another (an sft ``score`` when every row imitates the reference answer, which no one scored;
    ``reasoning_skills`` when no challenger named one). Empty for a table of no rows."""
    if tbl.num_rows == 0:
        return []
    out: list[str] = []

    def walk(arr: pa.Array, path: str) -> None:
        if arr.null_count == len(arr):
            out.append(path)
        elif pa.types.is_struct(arr.type):
            for f, child in zip(arr.type, arr.flatten(), strict=True):
                walk(child, f"{path}.{f.name}")
        elif pa.types.is_list(arr.type):
            walk(arr.flatten(), f"{path}[]")

    for name in tbl.column_names:
        walk(tbl.column(name).combine_chunks(), name)
    return out
