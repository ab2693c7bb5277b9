"""The three baseline writers, each put in the challenger's seat of the loop for a single round.

- ``self-instruct``: a few seed tasks in, one new task out; the writer never sees a document.
- ``grounded``: one task written in one pass from the document.
- ``cot-self-instruct``: reasons step by step about the document (and two seed tasks), then writes.

None of them gets feedback: that is what separates them from the agentic loop.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from autodata.baselines.schemas import (
    CotSelfInstructOutput,
    CotSelfInstructShortOutput,
    GroundedOutput,
    GroundedShortOutput,
    SelfInstructOutput,
    SelfInstructShortOutput,
)
from autodata.documents import Document
from autodata.errors import ConfigError, UserError
from autodata.judging.framing import fence
from autodata.judging.rubric import RubricRules
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import StructuredResult
from autodata.loop.episode import Proposer
from autodata.prompts import render
from autodata.roles.schemas import ChallengerOutput, ShortAnswerOutput


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    template: str
    output: type[ChallengerOutput]
    short_output: type[ShortAnswerOutput]  # the verifiable profile's form
    uses_document: bool
    shots: int  # seed tasks shown to the writer


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("self-instruct", "baseline_self_instruct.j2", SelfInstructOutput, SelfInstructShortOutput, False, 3),
        Method("grounded", "baseline_grounded.j2", GroundedOutput, GroundedShortOutput, True, 0),
        Method(
            "cot-self-instruct",
            "baseline_cot_self_instruct.j2",
            CotSelfInstructOutput,
            CotSelfInstructShortOutput,
            True,
            2,
        ),
    )
}


def method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown baseline method {name!r}; expected one of: {', '.join(METHODS)}") from None


def check_profile(profile_name: str) -> None:
    """Refuse a profile whose examples the writers cannot write. The writers write the rubric form
    (``rubric-qa``, ``legal``) or the short-answer form (``verifiable``); a profile with its own
    challenger output (``code``: a task with hidden tests; ``instruction``: checkable constraints)
    would reach its scorer without the fields it reads. ConfigError naming ``loop.profile`` (exit 2)."""
    from autodata.loop.profile import PROFILES, profile

    own = profile(profile_name).challenger_output
    if own:
        fit = ", ".join(n for n, p in PROFILES.items() if not p.challenger_output)
        raise ConfigError(
            f"loop.profile: the baselines cannot write {profile_name!r} examples (its challenger writes a "
            f"{own!r} output the baseline writers have no form for); use one of: {fit}"
        )


def default_seeds_text() -> str:
    return resources.files("autodata").joinpath("defaults/seed_tasks.jsonl").read_text(encoding="utf-8")


def load_seeds(path: Path | None) -> list[dict[str, Any]]:
    """Seed tasks: JSONL rows with ``question`` and ``reference_answer`` (``context`` optional).

    An ``examples.jsonl`` of an earlier run is a valid seed file. Without a path, the embedded set.
    """
    if path is None:
        text, where = default_seeds_text(), "<embedded seed tasks>"
    else:
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise UserError(f"cannot read the seed tasks {path}: {exc.strerror or exc}") from None
    seeds: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{where}:{n}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) and row[k].strip() for k in ("question", "reference_answer")
        ):
            raise UserError(f"{where}:{n}: a seed task needs non-empty 'question' and 'reference_answer' strings")
        seeds.append(
            {
                "context": row.get("context") or "",
                "question": row["question"],
                "reference_answer": row["reference_answer"],
            }
        )
    if not seeds:
        raise UserError(f"{where}: no seed tasks")
    return seeds


def pick_seeds(seeds: Sequence[dict[str, Any]], doc_id: str, run_seed: int, k: int) -> list[dict[str, Any]]:
    """The seed tasks shown for one document: a draw fixed by the run seed and the document."""
    rng = random.Random(f"{run_seed}|{doc_id}")
    return rng.sample(list(seeds), min(k, len(seeds)))


def proposer(
    m: Method,
    endpoint: str,
    seeds: Sequence[dict[str, Any]],
    *,
    run_seed: int,
    rules: RubricRules = RubricRules(),
    short_answer: bool = False,
) -> Proposer:
    """The writer for the challenger's seat; ``short_answer`` asks for the verifiable profile's form."""

    async def propose(runtime: ModelRuntime, doc: Document, round_no: int, feedback: Sequence[str]) -> StructuredResult:
        del feedback  # one-shot: the baselines never learn why an example failed
        prompt = render(
            m.template,
            seeds=pick_seeds(seeds, doc.id, run_seed, m.shots) if m.shots else [],
            document_id=doc.id,
            title=fence(doc.title).replace('"', "'"),
            document=fence(doc.text),
            rules=rules,
            rubric_rules=json.dumps(rules.as_block()),  # the loop challenger's block (loop.rubric), as data
            short_answer=short_answer,
        )
        output = m.short_output if short_answer else m.output
        return await runtime.structured(
            endpoint, [{"role": "user", "content": prompt}], output, role="challenger", sample=round_no
        )

    return propose


def own_context(doc: Document, example: ChallengerOutput) -> Document:
    """What a Self-Instruct example is checked against: it has no source, so its own context."""
    return Document(id=doc.id, source=doc.source, title=doc.title, text=example.context, format="generated")
