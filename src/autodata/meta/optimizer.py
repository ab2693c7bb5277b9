"""``autodata optimize``: evolve the editable half of the harness, never the frozen half.

One iteration, following the paper (arXiv 2606.25996, section on meta-optimization):

1. pick a parent from the population by Boltzmann sampling on validation pass rate (p ∝ exp(s/T));
2. run the parent on a minibatch of training documents and keep the trajectories;
3. an analyzer model reads them (and the history log) and names root causes;
4. an implementer model proposes edits; edits outside the editable components, knobs outside their
   range and text aimed at the solvers or judge are refused and logged as hacking attempts;
5. the child is evaluated on the validation documents (``repeats`` times, seeds differ; the mean
   and spread are stored), and so is its parent again, on the same documents with the same seeds
   (paired, as the paper re-evaluates both rather than trusting the parent's stored score, which
   was selected for being high); the child is kept only if strictly better than the re-evaluated
   parent (by ``margin``) and, with ``optimize.test: paired``, if an exact McNemar test on the
   per-document outcomes says so at ``optimize.alpha``;
6. a paragraph on what changed and why goes to the history log later analyzers read.

Before every evaluation the frozen hash (solver/judge prompts, scoring and acceptance code, preset,
sample counts, models) is recomputed and compared with the one recorded at the start; a canary set
of fixed examples is re-solved every few iterations and on every resume (fresh samples: a seed of its
own per check), and a shift of the mean weak or strong score that is both large
(``canary_tolerance``) and beyond what sampling noise explains (a permutation test over its
attempts at ``canary_alpha``, see ``canary_drift``) stops the run: the frozen side has changed under us.

Test documents are evaluated once, at the end, for the report; nothing is ever selected on them.
State is checkpointed after every iteration (``state.json`` + ``population.jsonl``); a crashed run
resumes at the iteration it was in, and replays that iteration's calls from the call cache, so the
population comes out the same. Iterations may run several at once (``in_flight``): their parents are
chosen from the population as it stood when the batch started and they are committed in order.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scipy import stats

from autodata.config import DIRECTIVES, Config
from autodata.documents import Document, Skipped, config_documents, fit_to_budget
from autodata.errors import ConfigError, UserError
from autodata.llm.runtime import ModelRuntime, check_api_keys
from autodata.llm.types import CallError
from autodata.loop.document import episode_within
from autodata.loop.episode import Episode, EpisodeSettings, Round, Steps, scores_of
from autodata.loop.profile import profile
from autodata.loop.run import documents_in_flight, settings_from
from autodata.meta.guards import Refusal, check_edit, knob_value, output_guard, scan_outputs
from autodata.meta.recipe import EDITABLE, Recipe, apply_recipe, frozen_hash, root_recipe
from autodata.prompts import render
from autodata.roles.challenger import example_model
from autodata.roles.schemas import Analysis, RecipeEdits
from autodata.store.call_log import CallLog
from autodata.store.files import atomic_text
from autodata.store.lock import DirLock

META_ROLES = ("analyzer", "implementer")
STATE = "state.json"
CALLS = "calls.db"


class FrozenChanged(Exception):
    """The frozen side differs from the start of the run: evaluations would not be comparable."""


class EvaluationFailed(UserError):
    """Calls failed during an evaluation; its scores would be deflated, so none are recorded.

    Exit code 1: nothing is wrong with the command; the run resumes where it was once the endpoints
    answer again (calls that succeeded replay from the cache)."""

    exit_code = 1


# ------------------------------------------------------------------------------------------ pure parts


def boltzmann_weights(scores: Sequence[float], temperature: float) -> list[float]:
    """Selection probabilities p ∝ exp(s/T), computed stably (shifted by the maximum)."""
    top = max(scores)
    raw = [math.exp((s - top) / temperature) for s in scores]
    total = sum(raw)
    return [r / total for r in raw]


def pick_parent(population: Sequence[dict[str, Any]], temperature: float, rng: random.Random) -> dict[str, Any]:
    pool = [c for c in population if c["accepted"]]
    weights = boltzmann_weights([c["val_mean"] for c in pool], temperature)
    return rng.choices(pool, weights=weights, k=1)[0]


def split_documents(ids: Sequence[str], sizes: tuple[int, int, int], seed: int) -> dict[str, list[str]]:
    """Seeded, disjoint train/validation/test splits of the document ids."""
    need = sum(sizes)
    if len(ids) < need:
        raise ConfigError(
            f"the optimizer needs {need} documents (train {sizes[0]} + validation {sizes[1]} + test {sizes[2]}), "
            f"found {len(ids)}",
            details=["optimize.train_docs, optimize.val_docs, optimize.test_docs: lower them, or add documents"],
        )
    order = sorted(ids)
    random.Random(f"split:{seed}").shuffle(order)
    a, b, c = sizes
    return {"train": order[:a], "val": order[a : a + b], "test": order[a + b : a + b + c]}


def strictly_better(child: float, parent: float, margin: float) -> bool:
    return child > parent + margin + 1e-12


CANARY_DRAWS = 10_000  # random relabellings of the canary's permutation test (seeded: same answer on resume)


def canary_drift(
    base: Sequence[Sequence[float]], now: Sequence[Sequence[float]], alpha: float, floor: float
) -> dict[str, Any]:
    """Whether one side's canary mean moved more than sampling noise and ``floor`` allow.

    ``base`` and ``now``: the attempt scores (each in [0, 1]) of each canary task, in the same task
    order, at the start of the run and at this check (fresh samples: each check has a seed of its own,
    so the call cache cannot replay the baseline and a changed model behind the same name shows). The
    statistic is the shift of the pooled attempt mean, ``now - base``. Its p-value comes from a
    permutation test stratified by task: under the null hypothesis that nothing changed, the attempts
    of one task are exchangeable between the two checks, so the labels are shuffled within each task
    (``CANARY_DRAWS`` seeded relabellings, p = (hits + 1) / (draws + 1), two-sided). It assumes no
    distribution, which matters with a handful of attempts per task whose scores are fractions of a
    rubric or of unit tests: a normal approximation either misses a real shift (continuous scores
    with a bound on their variance) or flags noise (a sample variance of 0 from 4 equal draws).

    The side has drifted when ``|shift| > floor`` (``optimize.canary_tolerance``: a shift too small
    to matter is never a stop) and ``p < alpha`` (``optimize.canary_alpha``: the shift is not the luck
    of a few draws). The test is honest about what a small canary cannot see: one task of 4 attempts
    a side has at best p = 2/70 ≈ 0.029 (all 8 attempts ordered by side), so at alpha = 0.01 only a
    larger canary (``optimize.canary_size``, ``loop.k_weak``/``k_strong``) can stop a run. A state
    without per-task scores (written before they were kept) is held to ``floor`` alone (p = 0).

    Returns ``{"shift", "p_value", "drifted"}`` (shift in score points in [0, 1]).
    """
    nb = sum(len(t) for t in base)
    nn = sum(len(t) for t in now)
    if not nb or not nn:
        return {"shift": 0.0, "p_value": 1.0, "drifted": False}

    def shift_of(b_sum: float, n_sum: float) -> float:
        return n_sum / nn - b_sum / nb

    shift = shift_of(sum(map(sum, base)), sum(map(sum, now)))
    if len(base) == 1 and len(now) == 1 and len(base[0]) == 1 and len(now[0]) == 1:
        p = 0.0  # only the two means are known (an older state): the floor decides
    else:
        rng = random.Random("canary")
        pairs = [(list(b) + list(n), len(b)) for b, n in zip(base, now, strict=True)]
        hits = 0
        for _ in range(CANARY_DRAWS):
            b_sum = n_sum = 0.0
            for pool, k in pairs:
                rng.shuffle(pool)
                b_sum += sum(pool[:k])
                n_sum += sum(pool[k:])
            hits += abs(shift_of(b_sum, n_sum)) >= abs(shift) - 1e-12
        p = (hits + 1) / (CANARY_DRAWS + 1)
    return {"shift": shift, "p_value": p, "drifted": abs(shift) > floor and p < alpha}


# Seeds of the paired validations of iteration ``it``: one runtime per (iteration, repeat), far from
# the root's repeats (0 … repeats-1) and the canary checks (1,000,000 + n).
ITERATION_SEEDS = 10_000_000


def iteration_seed(it: int, repeat: int) -> int:
    """Seed offset of repeat ``repeat`` of iteration ``it``'s paired validation (child and parent)."""
    return ITERATION_SEEDS + it * 32 + repeat


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """A child against its re-evaluated parent on the same (document, seed) pairs.

    ``wins``: pairs the child accepted and the parent did not; ``losses``: the reverse (the
    discordant pairs of McNemar's test). ``p_value``: exact one-sided McNemar test (a binomial test
    of ``wins`` out of ``wins + losses`` at 1/2), 1.0 when there are no discordant pairs.
    """

    child_mean: float
    parent_mean: float
    wins: int
    losses: int
    p_value: float
    better: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "child_mean": self.child_mean,
            "parent_mean": self.parent_mean,
            "wins": self.wins,
            "losses": self.losses,
            "p_value": self.p_value,
        }


def paired_comparison(
    child: Sequence[bool], parent: Sequence[bool], *, margin: float, test: str = "margin", alpha: float = 0.05
) -> PairedComparison:
    """Compare per-pair outcomes (accepted or not) of a child and its parent; same length, same order.

    ``test="margin"``: better when the child's mean beats the parent's by more than ``margin``.
    ``test="paired"``: that, and the exact one-sided McNemar p-value below ``alpha``.
    Raises ValueError when the sequences differ in length or are empty.
    """
    if len(child) != len(parent) or not child:
        raise ValueError(f"paired outcomes must be non-empty and of equal length ({len(child)} vs {len(parent)})")
    wins = sum(1 for c, p in zip(child, parent, strict=True) if c and not p)
    losses = sum(1 for c, p in zip(child, parent, strict=True) if p and not c)
    n = wins + losses
    p_value = float(stats.binomtest(wins, n, 0.5, alternative="greater").pvalue) if n else 1.0
    cm, pm = sum(child) / len(child), sum(parent) / len(parent)
    better = strictly_better(cm, pm, margin) and (test != "paired" or p_value < alpha)
    return PairedComparison(cm, pm, wins, losses, p_value, better)


def component_diff(old: Recipe, new: Recipe) -> str:
    lines: list[str] = []
    for name in sorted(set(old.components) | set(new.components) | set(old.knobs) | set(new.knobs)):
        a = str(old.components.get(name, old.knobs.get(name, "")))
        b = str(new.components.get(name, new.knobs.get(name, "")))
        if a != b:
            lines += difflib.unified_diff(
                a.splitlines(), b.splitlines(), f"{name} (parent)", f"{name} (child)", lineterm=""
            )
    return "\n".join(lines)


def rejection_counts(episodes: Sequence[Any]) -> dict[str, dict[str, int]]:
    """How often each reason group (``acceptance.REASONS``) and quality issue occurs in the episodes' rounds."""
    groups: Counter[str] = Counter()
    issues: Counter[str] = Counter()
    for e in episodes:
        for r in e.rounds:
            if r.decision is not None:
                groups.update(x.group for x in r.decision.reasons)
            if r.quality and not r.quality.get("passed"):
                issues.update(r.quality.get("issues") or [])
    return {"reason_groups": dict(sorted(groups.items())), "quality_issues": dict(sorted(issues.items()))}


def produced(evals: Sequence[Evaluation]) -> list[tuple[str, dict[str, Any]]]:
    """Every example the challenger wrote in these evaluations, as ``(document_id, example)``."""
    return [(e.document_id, r.example) for ev in evals for e in ev.episodes for r in e.rounds if r.example]


def _attempt_view(a: Any) -> dict[str, Any]:
    """An attempt as the analyzer reads it: the stored attempt without the solver's reasoning and the
    scorer's raw details (long, and not what the analyzer is asked about)."""
    return {k: v for k, v in a.to_dict().items() if k not in ("reasoning", "details")}


def round_exchange(title: str, r: Round) -> dict[str, Any]:
    """One round as the analyzer reads it: the example (context, question, reference answer,
    rubric), the quality verdict, each weak and strong attempt's answer, marks and score, and the
    decision. The paper's analyzer reads the full solver exchanges, not a summary."""
    ex = r.example or {}
    rubric = ex.get("rubric") or []
    return {
        "document": title,
        "round": r.number + 1,
        "decision": (
            None
            if r.decision is None
            else ("accepted" if r.decision.accepted else [x.message for x in r.decision.reasons])
        ),
        "quality": r.quality,
        "context": ex.get("context"),
        "question": ex.get("question"),
        "reference_answer": ex.get("reference_answer"),
        "rubric": rubric,
        # what a profile's example holds beyond a rubric: a code task's hidden tests, an instruction's constraints
        **{k: ex[k] for k in ("tests", "constraints") if ex.get(k)},
        "weak": [_attempt_view(a) for a in r.weak],
        "strong": [_attempt_view(a) for a in (r.strong or [])],
        **({"error": r.error} if r.error else {}),
    }


def sample_exchanges(
    episodes: Sequence[Episode], titles: dict[str, str], *, budget_tokens: int, seed: str
) -> list[dict[str, Any]]:
    """Full exchanges of a seeded sample of rounds, accepted and rejected alternating, within
    ``budget_tokens`` (estimated at four characters a token over the JSON the analyzer reads).

    Rounds without an example (the challenger's output was unusable) carry no exchange. A round
    that does not fit whole is left out; a smaller one later in the sample may still fit.
    """
    rounds = [(e.document_id, r) for e in episodes for r in e.rounds if r.example]
    rng = random.Random(seed)
    accepted = [x for x in rounds if x[1].decision is not None and x[1].decision.accepted]
    rejected = [x for x in rounds if x not in accepted]
    rng.shuffle(accepted)
    rng.shuffle(rejected)
    order: list[tuple[str, Round]] = []
    while accepted or rejected:  # two rejected for each accepted: rejections are what to fix
        for pool, n in ((rejected, 2), (accepted, 1)):
            for _ in range(n):
                if pool:
                    order.append(pool.pop())
    out: list[dict[str, Any]] = []
    left = budget_tokens * 4
    for doc_id, r in order:
        ex = round_exchange(titles.get(doc_id, doc_id), r)
        size = len(json.dumps(ex, ensure_ascii=False))
        if size <= left:
            out.append(ex)
            left -= size
    return out


def round_summary(r: Round) -> str:
    ex = r.example or {}
    q = (ex.get("question") or "").replace("\n", " ")[:160]
    parts = [f"question: {q!r}" if q else "no usable example"]
    weak, strong = scores_of(r.weak), scores_of(r.strong or [])
    if weak:
        parts.append(f"weak {100 * statistics.fmean(weak):.0f}%")
    if strong:
        parts.append(f"strong {100 * statistics.fmean(strong):.0f}%")
    if r.decision is not None:
        parts.append(
            "accepted" if r.decision.accepted else "rejected: " + "; ".join(x.message for x in r.decision.reasons)
        )
    if r.quality and not r.quality.get("passed"):
        parts.append("quality issues: " + ", ".join(r.quality.get("issues") or []))
    if r.error:
        parts.append(f"error: {r.error}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------ the run


@dataclass(slots=True)
class Evaluation:
    rate: float
    accepted: int
    documents: int
    episodes: list[Episode] = field(default_factory=list)


class Optimizer:
    def __init__(
        self,
        cfg: Config,
        out_dir: Path,
        *,
        use_cache: bool = True,
        runtime_factory: Callable[[Config], ModelRuntime] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_wait: Callable[[str, float, str], None] | None = None,
        settings: EpisodeSettings | None = None,
    ) -> None:
        """``on_wait(endpoint, seconds, why)``: told of every long wait of any of its runtimes (a server's
        Retry-After, a backoff), as ``ModelRuntime.on_wait``. ``settings``: the loop's settings of ``cfg``
        when the caller already computed them (the run's roles, once: ``autodata optimize`` reads them for
        its pre-flight)."""
        self.cfg, self.out = cfg, Path(out_dir)
        self.on_wait = on_wait
        self.opt = cfg.optimize
        self.use_cache = use_cache
        self.factory = runtime_factory or (lambda c: ModelRuntime.from_config(c, use_cache=use_cache))
        self.on_progress = on_progress
        self._runtimes: dict[int, ModelRuntime] = {}
        self.calls: CallLog | None = None  # DIR/calls.db: every call of every session, the source of the spend
        self._retired: list[Any] = [0.0, 0]  # cost and tokens of runtimes already closed this session
        self.docs: dict[str, Document] = {}
        self.state: dict[str, Any] = {}
        self.population: list[dict[str, Any]] = []
        self._settings = settings

    # ------------------------------------------------------------------ plumbing

    @property
    def settings(self) -> EpisodeSettings:
        """The loop's settings under the config's own instructions, computed once (roles and sandbox
        included); a recipe's settings reuse its roles and sandbox (:meth:`recipe_settings`)."""
        if self._settings is None:
            self._settings = settings_from(self.cfg)
        return self._settings

    def recipe_settings(self, recipe: Recipe) -> EpisodeSettings:
        """The loop's settings with ``recipe`` applied (its instructions, directives and knobs)."""
        base = self.settings
        return EpisodeSettings.from_config(
            apply_recipe(self.cfg, recipe), roles=base.endpoints.roles(), sandbox=base.sandbox
        )

    def runtime(self, seed_offset: int) -> ModelRuntime:
        """One runtime per seed: repeats and canary checks draw fresh samples, reruns replay the cache."""
        rt = self._runtimes.get(seed_offset)
        if rt is None:
            rt = self._runtimes[seed_offset] = self.factory(
                self.cfg.model_copy(update={"seed": self.cfg.seed + seed_offset})
            )
            if self.calls is not None:
                rt.meter.listener = self.calls.add
            rt.on_wait = self.on_wait
        return rt

    def spent(self) -> tuple[float, int]:
        """Cost (USD) and tokens of every call of every session, from the call log: a session killed
        mid-iteration never checkpointed its spend, but its calls are in the log."""
        if self.calls is None:  # before the log is open (nothing spent yet this session)
            cost = self._retired[0] + sum(rt.meter.totals.cost_usd for rt in self._runtimes.values())
            tokens = self._retired[1] + sum(
                rt.meter.totals.input_tokens + rt.meter.totals.output_tokens for rt in self._runtimes.values()
            )
        else:
            t = self.calls.totals()
            cost, tokens = t["cost_usd"], int(t["input_tokens"] + t["output_tokens"])
            self.state["calls"], self.state["estimated_usage_calls"] = t["calls"], t["estimated_usage_calls"]
        return cost + self.state.get("spent_before_log_usd", 0.0), tokens + self.state.get("tokens_before_log", 0)

    def _open_call_log(self, *, resuming: bool) -> None:
        """Open DIR/calls.db; a directory started before the log existed keeps its checkpointed spend."""
        path = self.out / CALLS
        if resuming and not path.exists() and "spent_before_log_usd" not in self.state:
            self.state["spent_before_log_usd"] = self.state.get("spent_usd", 0.0)
            self.state["tokens_before_log"] = self.state.get("tokens", 0)
        self.calls = CallLog(path)

    async def _retire(self, offsets: Sequence[int]) -> None:
        """Close the runtimes of a finished iteration's paired validation, keeping what they spent."""
        for off in offsets:
            rt = self._runtimes.pop(off, None)
            if rt is not None:
                t = rt.meter.totals
                self._retired[0] += t.cost_usd
                self._retired[1] += t.input_tokens + t.output_tokens
                await rt.aclose()

    def _save(self) -> None:
        """Checkpoint: state, population, history and the summary so far (``status`` reads it live)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.state["spent_usd"], self.state["tokens"] = self.spent()
        atomic_text(self.out / STATE, json.dumps(self.state, indent=1))
        atomic_text(
            self.out / "population.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in self.population)
        )
        atomic_text(self.out / "history.md", "# Optimization history\n\n" + "\n\n".join(self.state["history"]) + "\n")
        if self.population:
            atomic_text(self.out / "summary.json", json.dumps(self.summary(), indent=2) + "\n")

    def check_frozen(self, recipe: Recipe) -> None:
        now = frozen_hash(self.cfg)
        applied = frozen_hash(apply_recipe(self.cfg, recipe))
        if now != self.state["frozen_hash"] or applied != now:
            raise FrozenChanged(
                f"the frozen side changed (recorded {self.state['frozen_hash']}, now {now}, "
                f"with the recipe {applied}): solver/judge prompts, scoring or acceptance code, thresholds, "
                "sample counts or models differ"
            )

    def log_eval(self, phase: str, ids: Sequence[str], candidate: str = "") -> dict[str, Any]:
        entry = {"phase": phase, "iteration": self.state["next_iteration"], "documents": list(ids)}
        if candidate:
            entry["candidate"] = candidate
        self.state["evaluated"].append(entry)
        return entry

    def budget(self, doc_id: str) -> int:
        """The token budget ``doc_id`` is cut to: ``documents.max_tokens``, or the smaller one a server's
        context-length refusal re-fitted it to in an earlier evaluation (kept in the state, so every later
        evaluation -- a parent's paired re-evaluation included -- sees the same cut)."""
        return int(self.state.setdefault("budgets", {}).get(doc_id, self.cfg.documents.budget()))

    # ------------------------------------------------------------------ evaluation

    async def evaluate(
        self, recipe: Recipe, ids: Sequence[str], *, phase: str, repeat: int = 0, candidate: str = ""
    ) -> Evaluation:
        self.check_frozen(recipe)
        entry = self.log_eval(phase, ids, candidate)
        settings = self.recipe_settings(recipe)
        rt = self.runtime(repeat)
        sem = asyncio.Semaphore(documents_in_flight(self.cfg, settings))

        async def one(doc_id: str) -> Episode:
            async with sem:
                # a context-length refusal re-fits the document to a smaller budget, as in `autodata run`
                _, episode, refits = await episode_within(rt, self.docs[doc_id], self.budget(doc_id), settings)
            if refits:
                budgets = self.state["budgets"]
                budgets[doc_id] = min(self.budget(doc_id), refits[-1]["next_max_tokens"])
                entry.setdefault("refits", {})[doc_id] = refits
            return episode

        results = await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)
        failed = [(i, r) for i, r in zip(ids, results, strict=True) if isinstance(r, BaseException)]
        if failed:  # a missing episode is not a failed example: scoring it 0 would bias the comparison
            doc_id, err = failed[0]
            kind = err.kind if isinstance(err, CallError) else f"internal error: {type(err).__name__}"
            raise EvaluationFailed(
                f"{len(failed)} of {len(ids)} {phase} documents could not be evaluated ({kind}: {err}; first: "
                f"{self.docs[doc_id].source}); nothing of this iteration was recorded. Fix the endpoint or config "
                "and run the same command again to resume."
            )
        episodes = [r for r in results if isinstance(r, Episode)]
        accepted = sum(e.status == "accepted" for e in episodes)
        return Evaluation(accepted / max(1, len(ids)), accepted, len(ids), episodes)

    async def validate(self, recipe: Recipe) -> list[Evaluation]:
        """``repeats`` evaluations on the validation split, each with its own seed."""
        return [
            await self.evaluate(recipe, self.state["splits"]["val"], phase="val", repeat=r)
            for r in range(self.opt.repeats)
        ]

    # ------------------------------------------------------------------ canary

    async def _solve_canaries(self, seed_offset: int) -> dict[str, Any]:
        """Re-solve and re-judge the canary examples on the runtime of ``seed_offset``: the mean weak and
        strong scores and, under ``tasks``, each example's attempt scores (what ``canary_drift`` tests)."""
        rt = self.runtime(seed_offset)
        # every canary attempt is drawn (no adaptive stopping): the means must be comparable check to check
        first = next(iter(self.docs))
        doc = fit_to_budget(self.docs[first], self.budget(first))
        steps = Steps(rt, doc, replace(self.settings, adaptive_stopping=False))
        tasks: dict[str, list[list[float]]] = {"weak": [], "strong": []}
        try:
            model = example_model(profile(self.cfg.loop.profile).challenger_output)
            for c in self.state["canary"]["examples"]:
                ex = model.model_validate(c)  # the profile's own example: a code task keeps its tests
                tasks["weak"].append(scores_of(await steps.attempts(ex, strong=False)))
                tasks["strong"].append(scores_of(await steps.attempts(ex, strong=True)))
        except CallError as err:
            raise EvaluationFailed(f"the canary check could not run ({err.kind}: {err}); run again to resume") from None
        means = {k: statistics.fmean([x for t in v for x in t]) if any(v) else 0.0 for k, v in tasks.items()}
        return {**means, "tasks": tasks}

    async def build_canary(self, root_eval: Evaluation) -> None:
        examples = []
        for e in root_eval.episodes:
            r = e.accepted_round
            if r is not None and r.example and len(examples) < self.opt.canary_size:
                model = example_model(profile(self.cfg.loop.profile).challenger_output)
                examples.append({k: r.example[k] for k in model.model_fields if k in r.example})
        self.state["canary"] = {"examples": examples, "baseline": None, "checks": []}
        if examples:
            self.state["canary"]["baseline"] = await self._solve_canaries(1_000_000)

    async def check_canary(self) -> str | None:
        """Re-solve the canary (fresh samples) and test each side's shift with ``canary_drift``; the
        reason to stop, or None. Every check is recorded in the state with its shifts and p-values."""
        canary = self.state.get("canary") or {}
        if not canary.get("examples"):
            return None
        n = len(canary["checks"]) + 1
        now = await self._solve_canaries(1_000_000 + n)
        base = canary["baseline"]
        tests = {
            k: canary_drift(
                (base.get("tasks") or {}).get(k) or [[base[k]]],
                now["tasks"][k] if base.get("tasks") else [[now[k]]],
                self.opt.canary_alpha,
                self.opt.canary_tolerance,
            )
            for k in ("weak", "strong")
        }
        canary["checks"].append(
            {
                "iteration": self.state["next_iteration"],
                "weak": now["weak"],
                "strong": now["strong"],
                "shift": {k: t["shift"] for k, t in tests.items()},
                "p_value": {k: t["p_value"] for k, t in tests.items()},
            }
        )
        bad = [
            f"{k} mean moved {100 * t['shift']:+.0f} points, p = {t['p_value']:.2g}"
            for k, t in tests.items()
            if t["drifted"]
        ]
        if bad:
            return (
                "canary set shifted beyond tolerance ("
                + "; ".join(bad)
                + f"; tolerance {100 * self.opt.canary_tolerance:.0f} points at p < {self.opt.canary_alpha:g}): "
                "the solvers or judge behave differently "
                "from the start of the run (tampered or drifting endpoints)"
            )
        return None

    # ------------------------------------------------------------------ one iteration

    async def iteration(self, it: int, parent: dict[str, Any]) -> dict[str, Any]:
        rng = random.Random(f"{self.cfg.seed}:minibatch:{it}")
        train = self.state["splits"]["train"]
        batch = rng.sample(train, min(self.opt.minibatch, len(train)))
        parent_recipe = Recipe.model_validate(parent["recipe"])
        run = await self.evaluate(parent_recipe, batch, phase="train")
        trajectories = [
            {
                "title": self.docs[e.document_id].title[:100],
                "status": e.status,
                "rounds": [{"round": r.number + 1, "summary": round_summary(r)} for r in e.rounds],
            }
            for e in run.episodes
        ]
        history = "\n".join(self.state["history"][-8:])
        rejections = json.dumps(rejection_counts(run.episodes), sort_keys=True)
        exchanges = sample_exchanges(
            run.episodes,
            {d: self.docs[d].title[:100] for d in batch},
            budget_tokens=self.opt.analyzer_budget_tokens,
            seed=f"{self.cfg.seed}:exchanges:{it}",
        )
        record: dict[str, Any] = {
            "iteration": it,
            "parent": parent["hash"],
            "train_documents": batch,
            "exchanges_shown": len(exchanges),
        }
        try:
            analysis: Analysis = await self._ask(
                "analyzer",
                it,
                Analysis,
                components=parent_recipe.components,
                trajectories=trajectories,
                rejections=rejections,
                exchanges=json.dumps(exchanges, ensure_ascii=False, indent=1),
                history=history,
            )
            edits: RecipeEdits = await self._ask(
                "implementer",
                it,
                RecipeEdits,
                editable=list(EDITABLE),
                knobs=self.opt.knob_ranges,
                components=parent_recipe.components,
                knob_values=parent_recipe.knobs,
                vocabulary=json.dumps(
                    [{"name": n, "shown_to": list(r), "text": t} for n, (r, t) in DIRECTIVES.items()], indent=1
                ),
                analysis_json=json.dumps(analysis.model_dump(), ensure_ascii=False, indent=1),
                history=history,
            )
        except CallError as err:
            return {**record, "hash": None, "accepted": False, "reason": f"no usable analysis or edits: {err}"}
        record["analysis"] = analysis.summary or "; ".join(analysis.root_causes)
        record["rationale"] = edits.rationale
        refused: list[Refusal] = []
        components, knobs = dict(parent_recipe.components), dict(parent_recipe.knobs)
        for e in edits.edits:
            why = check_edit(e.component, e.new_value, dict(self.opt.knob_ranges))
            if why:
                refused += why
            elif e.component in EDITABLE:
                components[e.component] = e.new_value
            else:
                knobs[e.component] = knob_value(e.new_value)  # type: ignore[assignment]  (checked above)
        record["edits"] = [e.model_dump() for e in edits.edits]
        record["refused_edits"] = [r.to_dict() for r in refused]
        if refused:  # one attempt at gaming the loop disqualifies the whole child
            return {
                **record,
                "hash": None,
                "accepted": False,
                "hacking": True,
                "reason": "refused: " + refused[0].reason,
            }
        child = Recipe(components=components, knobs=knobs, parent=parent["hash"])
        if child.hash == parent["hash"]:
            return {**record, "hash": child.hash, "accepted": False, "reason": "the edits changed nothing"}
        offsets = [iteration_seed(it, r) for r in range(self.opt.repeats)]
        val = self.state["splits"]["val"]
        try:
            child_evals = [await self.evaluate(child, val, phase="val", repeat=o, candidate="child") for o in offsets]
            parent_evals = [
                await self.evaluate(parent_recipe, val, phase="val", repeat=o, candidate="parent") for o in offsets
            ]
        finally:
            await self._retire(offsets)
        scores = [e.rate for e in child_evals]
        parent_scores = [e.rate for e in parent_evals]
        mean = statistics.fmean(scores)
        cmp = paired_comparison(
            [e.status == "accepted" for ev in child_evals for e in ev.episodes],
            [e.status == "accepted" for ev in parent_evals for e in ev.episodes],
            margin=self.opt.margin,
            test=self.opt.test,
            alpha=self.opt.alpha,
        )
        child_flags = scan_outputs(produced(child_evals))
        parent_flags = scan_outputs(produced(parent_evals))
        gaming = output_guard(child_flags, parent_flags)
        needs = f"needs > parent + margin {100 * self.opt.margin:.1f}"
        if self.opt.test == "paired":
            needs += f" and McNemar p < {self.opt.alpha}"
        return {
            **record,
            "hash": child.hash,
            "recipe": child.model_dump(),
            "diff": component_diff(parent_recipe, child),
            "val_scores": scores,
            "val_mean": mean,
            "val_spread": statistics.pstdev(scores),
            "parent_val_scores": parent_scores,
            "parent_val_mean": statistics.fmean(parent_scores),
            "parent_stored_val_mean": parent["val_mean"],
            "test": self.opt.test,
            "paired": cmp.to_dict(),
            "output_findings": child_flags,
            "parent_output_findings": len(parent_flags),
            **({"hacking": True} if gaming else {}),
            "accepted": cmp.better and gaming is None,
            "reason": (gaming or "")
            + ("; " if gaming else "")
            + (
                f"validation {100 * mean:.1f}% vs parent {100 * cmp.parent_mean:.1f}% re-evaluated on the same "
                f"documents and seeds ({cmp.wins} won, {cmp.losses} lost, McNemar p={cmp.p_value:.3g})"
                + ("" if cmp.better else f" ({needs})")
            ),
        }

    async def _ask(self, role: str, it: int, output: type[Any], **values: Any) -> Any:
        """One structured call of a meta role (``analyzer`` or ``implementer``), its prompt from ``ROLE.j2``."""
        prompt = render(f"{role}.j2", **values)
        endpoint = self.cfg.roles[role]  # type: ignore[index]
        res = await self.runtime(0).structured(
            endpoint, [{"role": "user", "content": prompt}], output, role=role, sample=it
        )
        return res.value

    def _history_line(self, c: dict[str, Any]) -> str:
        changed = ", ".join(sorted({e["component"] for e in c.get("edits", [])})) or "nothing"
        verdict = "kept" if c["accepted"] else "discarded"
        return (
            f"**Iteration {c['iteration']}** (parent {c['parent']}): the analyzer found "
            f"{c.get('analysis', 'no analysis')!r}; the implementer changed {changed} "
            f"({c.get('rationale', '')!r}). Child {c.get('hash') or '-'}: {c['reason']}; {verdict}."
        )

    # ------------------------------------------------------------------ driver

    def _load_documents(self) -> None:
        cfg = self.cfg
        for item in config_documents(cfg.documents):
            if not isinstance(item, Skipped):
                self.docs[item.id] = item  # cut to its budget for each evaluation (``budget``)

    async def start(self) -> None:
        root = root_recipe(self.cfg)
        opt = self.opt
        self.state = {
            "frozen_hash": frozen_hash(self.cfg),
            "seed": self.cfg.seed,
            "splits": split_documents(list(self.docs), (opt.train_docs, opt.val_docs, opt.test_docs), self.cfg.seed),
            "root": root.hash,
            "next_iteration": 0,
            "history": [],
            "evaluated": [],
            "stopped": None,
            "started": time.time(),
        }
        evals = await self.validate(root)
        scores = [e.rate for e in evals]
        self.population = [
            {
                "iteration": -1,
                "hash": root.hash,
                "parent": None,
                "recipe": root.model_dump(),
                "diff": "",
                "val_scores": scores,
                "val_mean": statistics.fmean(scores),
                "val_spread": statistics.pstdev(scores),
                "accepted": True,
                "reason": "the starting recipe (from the config)",
            }
        ]
        if opt.canary_size:
            await self.build_canary(evals[0])
        self._save()

    async def run(self) -> dict[str, Any]:
        if not self.cfg.documents.paths:
            raise ConfigError("`autodata optimize` needs documents", details=["documents.paths: give folders or files"])
        self.cfg.require_roles(META_ROLES, "autodata optimize")
        roles = self.settings.endpoints.roles()
        check_api_keys(self.cfg, sorted({*roles.values(), *(self.cfg.roles[r] for r in META_ROLES)}))  # type: ignore[index]
        self._load_documents()
        with DirLock(self.out, "optimize"):  # one writer per directory; a killed holder's lock is released
            return await self._run_locked()

    async def _run_locked(self) -> dict[str, Any]:
        state_file = self.out / STATE
        pop = self.out / "population.jsonl"
        resuming = state_file.exists() and pop.exists() and pop.stat().st_size > 0  # else the root never finished
        try:
            if resuming:
                self.state = json.loads(state_file.read_text())
                self._open_call_log(resuming=True)
                self.population = [json.loads(x) for x in pop.read_text().splitlines()]
                if self.state.get("final") is not None and self.opt.iterations > self.state["next_iteration"]:
                    raise UserError(
                        f"{self.out} has finished and reported on its test split; running more iterations now would "
                        "select after the test documents were seen. Start a new --out directory (you may seed it "
                        "with the best recipe's instructions in the config)."
                    )
                if self.state["frozen_hash"] != frozen_hash(self.cfg):  # refused before anything is touched
                    raise UserError(
                        f"{self.out} was started with another frozen side ({self.state['frozen_hash']}, now "
                        f"{frozen_hash(self.cfg)}: solver/judge prompts, scoring or acceptance code, thresholds, "
                        "sample counts or models differ); its scores would not be comparable. Resume with the "
                        "original config or use a new --out directory."
                    )
                if self.state.get("stopped") is None and self.state["next_iteration"] < self.opt.iterations:
                    reason = await self.check_canary()  # every resume re-checks the frozen side's behaviour
                    if reason:
                        self.state["stopped"] = reason
            else:
                self._open_call_log(resuming=False)
                await self.start()
            await self._iterate()
            if self.state.get("stopped") is None and self.state.get("final") is None:
                await self._final()
        except FrozenChanged as exc:
            if not self.population:
                raise UserError(str(exc)) from None
            self.state["stopped"] = str(exc)
        finally:
            try:
                if self.population:  # nothing is checkpointed before the starting recipe has its scores
                    self._save()
            finally:
                try:
                    await self._close_runtimes()
                finally:
                    if self.calls is not None:
                        self.calls.close()
        return self.write_outputs()

    async def _close_runtimes(self) -> None:
        """Every runtime is closed (its cache committed) even when another one fails to close."""
        failed: BaseException | None = None
        for rt in self._runtimes.values():
            try:
                await rt.aclose()
            except Exception as exc:  # the first failure is raised once all are closed
                failed = failed or exc
        if failed is not None:
            raise failed

    async def _iterate(self) -> None:
        opt = self.opt
        while self.state.get("stopped") is None and self.state["next_iteration"] < opt.iterations:
            cost, tokens = self.spent()
            if opt.max_cost_usd is not None and cost >= opt.max_cost_usd:
                self.state["stopped"] = f"cost budget reached (${cost:.4f} of ${opt.max_cost_usd})"
                break
            if opt.max_tokens is not None and tokens >= opt.max_tokens:
                self.state["stopped"] = f"token budget reached ({tokens} of {opt.max_tokens})"
                break
            first = self.state["next_iteration"]
            batch = range(first, min(opt.iterations, first + opt.in_flight))
            parents = [
                pick_parent(self.population, opt.temperature, random.Random(f"{self.cfg.seed}:parent:{i}"))
                for i in batch
            ]
            children = await asyncio.gather(*(self.iteration(i, p) for i, p in zip(batch, parents, strict=True)))
            for child in children:  # the whole batch, in iteration order, in one checkpoint
                self.population.append(child)
                self.state["history"].append(self._history_line(child))
            self.state["next_iteration"] = batch[-1] + 1
            self._save()
            if self.on_progress:
                self.on_progress(self.summary())
            if any((i + 1) % opt.canary_every == 0 for i in batch):
                reason = await self.check_canary()
                if reason:
                    self.state["stopped"] = reason
                    self._save()

    def best(self) -> dict[str, Any]:
        kept = [c for c in self.population if c["accepted"]]
        return max(kept, key=lambda c: (c["val_mean"], -c["iteration"]))

    async def _final(self) -> None:
        """The test split, evaluated once, for the report only: baseline and best."""
        test = self.state["splits"]["test"]
        final: dict[str, Any] = {}
        if test:
            for name, cand in (("baseline", self.population[0]), ("best", self.best())):
                recipe = Recipe.model_validate(cand["recipe"])
                ev = await self.evaluate(recipe, test, phase="test")
                final[name] = {"hash": cand["hash"], "test_pass_rate": ev.rate, "accepted": ev.accepted}
        self.state["final"] = final

    # ------------------------------------------------------------------ outputs

    def summary(self) -> dict[str, Any]:
        st, pop = self.state, self.population
        children = [c for c in pop if c["iteration"] >= 0]
        best = self.best()
        final = st.get("final") or {}
        return {
            "kind": "optimize",
            "baseline": {"hash": pop[0]["hash"], "val_pass_rate": pop[0]["val_mean"], **final.get("baseline", {})},
            "best": {"hash": best["hash"], "val_pass_rate": best["val_mean"], **final.get("best", {})},
            "iterations_run": len(children),
            "iterations_accepted": sum(c["accepted"] for c in children),
            "hacking_attempts_blocked": sum(bool(c.get("hacking")) for c in children),
            "refused_edits": [{"iteration": c["iteration"], **r} for c in children for r in c.get("refused_edits", [])],
            "frozen_hash": st["frozen_hash"],
            "splits": {k: len(v) for k, v in st["splits"].items()},
            "canary": {
                "examples": len((st.get("canary") or {}).get("examples", [])),
                "baseline": (st.get("canary") or {}).get("baseline"),
                "checks": (st.get("canary") or {}).get("checks", []),
            },
            "cost_usd": round(st.get("spent_usd", 0.0), 6),  # every session's calls, from calls.db
            "tokens": st.get("tokens", 0),
            "calls": st.get("calls"),
            "estimated_usage_calls": st.get("estimated_usage_calls", 0),
            "cost_per_iteration_usd": round(st.get("spent_usd", 0.0) / max(1, len(children)), 6),
            "stopped": st.get("stopped"),
        }

    def write_outputs(self) -> dict[str, Any]:
        summary = self.summary()
        atomic_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        best = Recipe.model_validate(self.best()["recipe"])
        atomic_text(self.out / "best_recipe.yaml", best.to_yaml())
        from autodata.meta.plot import pass_rate_plot

        pass_rate_plot(self.population, self.out / "pass_rate.png")
        return summary


async def optimize(cfg: Config, out_dir: Path, **kwargs: Any) -> dict[str, Any]:
    return await Optimizer(cfg, out_dir, **kwargs).run()
