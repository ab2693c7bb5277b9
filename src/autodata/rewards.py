"""Rewards for RL training on exported examples: the same checks the data was selected with.

Two trainers, their documented call shapes:

- **TRL** (``GRPOTrainer(reward_funcs=[...])``; huggingface.co/docs/trl/main/en/grpo_trainer, "Using a
  custom reward function"): a reward function is called with keyword arguments ``prompts``,
  ``completions``, ``completion_ids``, ``trainer_state`` and every dataset column but ``prompt`` (one
  list entry per completion), and returns one float per completion (``None`` where it does not apply).
  In the *standard* format prompts and completions are strings; in the *conversational* format each is
  a list of ``{"role", "content"}`` messages (the completion: one assistant message). TRL names each
  reward function in its logs by ``__name__``.
- **verl** (``custom_reward_function.path``/``.name``; verl.readthedocs.io, "Implement Reward Function
  for Dataset"): ``compute_score(data_source, solution_str, ground_truth, extra_info)`` per response,
  where ``ground_truth`` is the row's ``reward_model.ground_truth`` and ``extra_info`` its
  ``extra_info`` column; extra keyword arguments come from ``custom_reward_function.reward_kwargs``.

What is shipped:

- :func:`verifiable_reward` (TRL): 1.0 when the completion's final answer equals the reference
  (:func:`autodata.judging.verifiable.equivalent`, the ``exact-answer`` scorer of the ``verifiable``
  profile), else 0.0.
- :class:`RubricReward` / :func:`rubric_reward` (TRL): the judge endpoint of a config marks each rubric
  criterion with the frozen judge prompt and the rubric formula turns the marks into the reward: the
  ``rubric-judge`` scorer of ``autodata.judging.scoring``, the one the filter ran. Calls go through
  the config's model runtime, so they are cached (the call cache), concurrent and paced by the
  endpoint's limits (RPM/TPM, adaptive window). A row of a profile scored in code (``data_source``
  ``autodata/verifiable``, ``reward_model.style`` ``"rule"``) is scored by equivalence, as the filter
  scored it. A judge call that fails for good gives ``None``
  (TRL's "does not apply"), never a made-up 0.
- :func:`code_reward` (TRL) / :func:`compute_code_score` (verl): the ``code-tests`` scorer of the
  ``code`` profile: the completion's code (its fenced block, or the whole text when it is Python) runs
  against the row's hidden unit tests (``reward_model.ground_truth``) in the same sandbox the filter
  used (the ``sandbox`` section of ``config``; default: bubblewrap with default limits); the reward is
  the fraction of tests passed. A completion without code gets 0.0 (for training, writing no code is
  a failure; the data filter instead records it as an attempt error); a sandbox that itself fails
  gives ``None`` (TRL) or raises (verl), never a made-up 0.
- :func:`compute_score` (verl) for all three, chosen by ``data_source`` (``autodata/<profile>``), and
  :func:`compute_verifiable_score` / :func:`compute_rubric_score` / :func:`compute_code_score` to pick
  one explicitly.

The config of :func:`rubric_reward` and :func:`compute_score` is a YAML file or a run directory (its
saved config), given as ``config=`` (verl: ``reward_kwargs``) or in ``$AUTODATA_REWARD_CONFIG``. Each
process that computes rewards keeps one runtime per config (verl's process-pool reward managers: one
per worker process, each with the endpoint's full limits).

The judged rewards score a row with the scorer its profile named in the filter, set as the config ran
it: the ``instruction-checks`` scorer of the ``instruction`` profile marks the checkable constraints in
code (``extra_info.constraints``) and asks the judge only for the rest of the rubric; with the config's
``loop.judge_sees_context`` on, the judge is shown the example's context (``extra_info.context``), as
the filter's judge was. A scorer with no reward here is a ValueError naming it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autodata.config import Config, load_config, validate_config
from autodata.errors import ConfigError, UserError
from autodata.judging.verifiable import equivalent
from autodata.llm.structured import split_think

CONFIG_ENV = "AUTODATA_REWARD_CONFIG"
DATA_SOURCE_PREFIX = "autodata/"
EXACT_SCORER, JUDGE_SCORER = "exact-answer", "rubric-judge"  # names in autodata.judging.scoring.SCORERS
CODE_SCORER, INSTRUCTION_SCORER = "code-tests", "instruction-checks"
JUDGED = (JUDGE_SCORER, INSTRUCTION_SCORER)  # scorers that ask the judge (the instruction one for part of the rubric)


@dataclass(slots=True)
class _Example:
    """What a scorer reads of an example (``autodata.judging.scoring.Scorable``; ``context`` is shown to
    the judge under ``loop.judge_sees_context``; ``constraints``: the instruction profile's, checked in code)."""

    question: str
    reference_answer: str
    rubric: list[Any]
    context: str = ""
    constraints: list[Any] | None = None


@dataclass(slots=True)
class JudgedRow:
    """One answer to score with the judge, and what its scorer reads of the example.

    ``rubric``: ``{"criterion", "weight", "category"}`` mappings (the export's); ``context``: the
    example's context (sent to the judge only when the config's ``loop.judge_sees_context`` is on, as the
    filter did); ``constraints``: the instruction profile's ``{"kind", "value"}`` constraints, or a JSON
    string of them (the export's ``extra_info.constraints``); ``scorer``: the filter's scorer name
    (``rubric-judge`` or ``instruction-checks``)."""

    question: str
    rubric: Sequence[Mapping[str, Any]]
    answer: str
    context: str = ""
    constraints: Any = None
    scorer: str = JUDGE_SCORER


# ---------------------------------------------------------------------------------------------- shapes


def completion_text(completion: Any) -> str:
    """The answer text of one completion in TRL's standard (a string) or conversational format (a list
    of messages: the last assistant message's content, text parts joined). A leading ``<think>…</think>``
    block is removed, as the runtime removes it from a solver's reply before scoring."""
    if isinstance(completion, str):
        text = completion
    elif isinstance(completion, Sequence) and completion and all(isinstance(m, Mapping) for m in completion):
        said = [m for m in completion if m.get("role", "assistant") == "assistant"] or list(completion)
        content = said[-1].get("content")
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        text = "" if content is None else str(content)
    else:
        raise TypeError(
            "a completion must be a string (standard format) or a list of messages with 'content' "
            f"(conversational format), not {type(completion).__name__}"
        )
    if text.lstrip().startswith("<think>"):
        text = split_think(text.lstrip())[0]
    return text


def _column(columns: Mapping[str, Any], name: str, n: int) -> list[Any] | None:
    value = columns.get(name)
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise ValueError(f"column {name!r}: expected one value per completion ({n}), as TRL passes columns")
    return list(value)


def _references(columns: Mapping[str, Any], n: int) -> list[str]:
    refs = _column(columns, "reference_answer", n)
    if refs is None:
        rm = _column(columns, "reward_model", n)
        if rm is not None:
            refs = [(r or {}).get("ground_truth") for r in rm]
    if refs is None:
        raise ValueError("no reference: the dataset needs a 'reference_answer' or 'reward_model' column (autodata rl)")
    return ["" if r is None else str(r) for r in refs]


# ---------------------------------------------------------------------------------------------- rule


def verifiable_reward(
    prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **columns: Any
) -> list[float]:
    """TRL reward: 1.0 per completion whose final answer equals the row's reference, else 0.0.

    ``completions``: strings or conversational message lists; ``columns`` must hold
    ``reference_answer`` (or ``reward_model`` with ``ground_truth``), one entry per completion. Returns
    a list of floats of the same length. Raises ValueError when no reference column is given.
    """
    items = list(completions or [])
    refs = _references(columns, len(items))
    return [float(equivalent(completion_text(c), ref)) for c, ref in zip(items, refs, strict=True)]


# ---------------------------------------------------------------------------------------------- judge


def load_reward_config(config: str | Path | Config | None) -> Config:
    """A config object, a YAML file, or a run directory (the config its run saved; secrets are never
    saved, so keys come from the environment as usual). ``None`` reads ``$AUTODATA_REWARD_CONFIG``."""
    if isinstance(config, Config):
        return config
    if config is None:
        config = os.environ.get(CONFIG_ENV)
        if not config:
            raise ConfigError(
                f"the rubric reward needs the config whose judge selected the data: pass config=PATH "
                f"(a YAML file or a run directory) or set {CONFIG_ENV}"
            )
    path = Path(config)
    if path.is_dir():
        from autodata.store.run_store import RunStore

        if not (path / "run.db").exists():
            raise UserError(f"{path} is not a run directory (no run.db); pass the run's config file instead")
        store = RunStore(path)
        try:
            saved = store.get_meta("config")
        finally:
            store.close()
        if not saved:
            raise UserError(f"{path}: the run saved no config; pass the config file instead")
        return validate_config(saved, f"{path} (saved config)")
    return load_config(path)


class _LoopThread:
    """One event loop on a daemon thread: the runtime's clients and limits live on it across calls, and a
    caller inside a running loop (a notebook) can still wait for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="autodata-rewards", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class RubricReward:
    """TRL reward (and verl scorer) that asks the config's judge to mark the rubric, exactly as the filter did.

    ``config``: a :class:`autodata.config.Config`, a YAML path, or a run directory. ``use_cache``:
    answer repeated calls from the call cache (``cache.*`` of the config). The judge endpoint is the
    config's ``roles.judge``; a config without one is a ConfigError naming ``roles.judge``.

    Calling the object follows TRL's signature (see the module docstring) and returns one float per
    completion in [0, 1], or ``None`` where the judge failed for good. :meth:`score` scores one answer.
    """

    def __init__(self, config: str | Path | Config | None = None, *, use_cache: bool = True) -> None:
        self.__name__ = "rubric_reward"  # TRL names a reward function by __name__ in its logs
        self.config = load_reward_config(config)
        self.use_cache = use_cache
        self._runtime: Any = None
        self._loop: _LoopThread | None = None
        self._lock = threading.Lock()

    @property
    def judge_endpoint(self) -> str:
        """The config's ``roles.judge`` (asked only when a row needs the judge: a config whose profile
        checks answers in code may have none). ConfigError naming ``roles.judge`` when it is missing."""
        return self.config.require_roles(("judge",), "rubric_reward")["judge"]

    # the runtime is built on first use; its clients then live on the loop thread
    def _ensure(self) -> _LoopThread:
        with self._lock:
            if self._loop is None:
                from autodata.llm.runtime import ModelRuntime

                self._runtime = ModelRuntime.from_config(self.config, use_cache=self.use_cache)
                self._loop = _LoopThread()
            return self._loop

    def scorer_of(self, name: str) -> Any:
        """The filter's scorer ``name`` as the config ran it: the judge sees the context exactly when
        ``loop.judge_sees_context`` is on (``Scorer.with_judge_context``, the episode's own setting)."""
        from autodata.judging.scoring import scorer

        return scorer(name).with_judge_context(self.config.loop.judge_sees_context)

    async def _score_one(self, row: JudgedRow) -> float | None:
        from autodata.judging.schemas import RubricItem
        from autodata.llm.types import CallError

        example = _Example(
            question=row.question,
            reference_answer="",  # the judge's prompt holds the question, the rubric, the answer (and context)
            rubric=[
                RubricItem(
                    criterion=str(c["criterion"]), weight=int(c["weight"]), category=str(c.get("category") or "")
                )
                for c in row.rubric
            ],
            context=row.context or "",
            constraints=_constraints(row.constraints),
        )
        if row.scorer == INSTRUCTION_SCORER and not example.constraints:
            raise ValueError(
                "an instruction-profile row needs its constraints ('extra_info.constraints' of an autodata rl "
                "export): the filter checked them in code, a judge must not mark them"
            )
        try:
            scored = await self.scorer_of(row.scorer).score(
                self._runtime, self.judge_endpoint, example, row.answer, sample=0
            )
        except CallError:
            return None
        return scored.score

    async def _score_all(self, rows: list[JudgedRow]) -> list[float | None]:
        return list(await asyncio.gather(*(self._score_one(r) for r in rows)))

    def score_many(
        self, rows: Sequence[JudgedRow | tuple[str, Sequence[Mapping[str, Any]], str]]
    ) -> list[float | None]:
        """Scores of answers judged concurrently within the endpoint's limits: :class:`JudgedRow` objects,
        or (question, rubric, answer) triples of the ``rubric-judge`` scorer without a context."""
        self.judge_endpoint  # noqa: B018  # a config without a judge fails here, naming roles.judge
        items = [r if isinstance(r, JudgedRow) else JudgedRow(*r) for r in rows]
        return self._ensure().run(self._score_all(items))

    def score(
        self,
        question: str,
        rubric: Sequence[Mapping[str, Any]],
        answer: str,
        *,
        context: str = "",
        constraints: Any = None,
        scorer: str = JUDGE_SCORER,
    ) -> float | None:
        """The filter's score of one answer, in [0, 1]: ``rubric.score`` of the marks (the judge's; for the
        ``instruction-checks`` scorer, the constraints' marks set in code and the judge's for the rest).
        ``context`` reaches the judge only under the config's ``loop.judge_sees_context``."""
        return self.score_many([JudgedRow(question, rubric, answer, context, constraints, scorer)])[0]

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **columns: Any
    ) -> list[float | None]:
        items = list(completions or [])
        n = len(items)
        extra = _column(columns, "extra_info", n) or [{}] * n
        rubrics = _column(columns, "rubric", n) or [(e or {}).get("rubric") for e in extra]
        questions = _column(columns, "question", n) or [(e or {}).get("question") for e in extra]
        contexts = _column(columns, "context", n) or [(e or {}).get("context") for e in extra]
        constraints = _column(columns, "constraints", n) or [(e or {}).get("constraints") for e in extra]
        styles = [(rm or {}).get("style") for rm in (_column(columns, "reward_model", n) or [None] * n)]
        sources = _column(columns, "data_source", n) or [None] * n
        kinds = [_kind(src, style) for src, style in zip(sources, styles, strict=True)]
        refs = _references(columns, n) if EXACT_SCORER in kinds or CODE_SCORER in kinds else [""] * n
        texts = [completion_text(c) for c in items]
        out: list[float | None] = [None] * n
        judged: list[int] = []
        coded = [i for i in range(n) if kinds[i] == CODE_SCORER]
        if coded:  # the filter ran these rows' tests in the sandbox: so does the reward
            sandbox = sandbox_of(self.config)
            for i, r in zip(
                coded, _run_code(sandbox, [texts[i] for i in coded], [refs[i] for i in coded]), strict=True
            ):
                out[i] = r
        for i in range(n):
            if kinds[i] == CODE_SCORER:
                continue
            if kinds[i] == EXACT_SCORER:
                out[i] = float(equivalent(texts[i], refs[i]))  # the filter checked this row in code
            elif not rubrics[i] or not questions[i]:
                raise ValueError(
                    f"row {i}: a rubric reward needs the question and rubric ('extra_info' of an autodata rl export)"
                )
            else:
                judged.append(i)
        rows = [
            JudgedRow(str(questions[i]), rubrics[i], texts[i], contexts[i] or "", constraints[i], kinds[i])
            for i in judged
        ]
        scores = self.score_many(rows) if rows else []
        for i, s in zip(judged, scores, strict=True):
            out[i] = s
        return out

    def close(self) -> None:
        """Close the runtime's connections and the call cache; the object can not be used afterwards."""
        with self._lock:
            if self._loop is not None:
                try:
                    self._loop.run(self._runtime.aclose())  # the call cache is committed and closed too
                finally:
                    self._loop.close()
                    self._loop = None


_REWARDS: dict[str, RubricReward] = {}


def _shared(config: str | Path | Config | None) -> RubricReward:
    key = repr(config if config is not None else os.environ.get(CONFIG_ENV))
    reward = _REWARDS.get(key)
    if reward is None:
        reward = _REWARDS[key] = RubricReward(config)
    return reward


def rubric_reward(
    prompts: Sequence[Any] | None = None,
    completions: Sequence[Any] | None = None,
    *,
    config: str | Path | Config | None = None,
    **columns: Any,
) -> list[float | None]:
    """TRL reward: the judge of ``config`` (default ``$AUTODATA_REWARD_CONFIG``) marks each completion
    against its row's rubric; see :class:`RubricReward`. One judge runtime per config is kept and reused."""
    return _shared(config)(prompts, completions, **columns)


# ---------------------------------------------------------------------------------------------- verl


def compute_verifiable_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: Mapping[str, Any] | None = None, **kwargs: Any
) -> float:
    """verl: 1.0 when the response's final answer equals ``ground_truth``, else 0.0."""
    return float(equivalent(completion_text(solution_str), str(ground_truth)))


def compute_rubric_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    *,
    config: str | Path | Config | None = None,
    **kwargs: Any,
) -> float:
    """verl: the judge's rubric score of the response; the question, rubric, context and (instruction
    profile) constraints come from ``extra_info``; ``data_source`` names the profile whose scorer the
    filter ran (``rubric-judge``, or ``instruction-checks``: constraints in code, the rest by the judge).

    Raises RuntimeError when the judge fails for good (verl needs a number; a made-up 0 would train on it).
    """
    info = dict(extra_info or {})
    if not info.get("rubric") or not info.get("question"):
        raise ValueError("extra_info must carry 'question' and 'rubric' (an autodata rl export does)")
    reward = _shared(config)
    kind = _kind(data_source)
    value = reward.score(
        str(info["question"]),
        info["rubric"],
        completion_text(solution_str),
        context=str(info.get("context") or ""),
        constraints=info.get("constraints"),
        scorer=kind if kind in JUDGED else JUDGE_SCORER,
    )
    if value is None:
        raise RuntimeError(f"the judge endpoint {reward.judge_endpoint!r} failed for this response; see the log")
    return value


def _kind(data_source: str | None, style: str | None = None) -> str:
    """The scorer the filter used for a row: its profile's (``data_source`` = ``autodata/<profile>``), else
    the one ``reward_model.style`` implies. Only the exact-answer and rubric-judge scorers have rewards here."""
    from autodata.loop.profile import profile

    name = None
    if data_source and data_source.startswith(DATA_SOURCE_PREFIX):
        try:
            name = profile(data_source[len(DATA_SOURCE_PREFIX) :]).scorer
        except ValueError:
            name = None
    if name is None:
        name = EXACT_SCORER if style == "rule" else JUDGE_SCORER
    if name not in (EXACT_SCORER, JUDGE_SCORER, CODE_SCORER, INSTRUCTION_SCORER):
        raise ValueError(f"rows of {data_source!r} are scored by {name!r}, which has no training reward here yet")
    return name


def _constraints(value: Any) -> list[Any]:
    """The instruction profile's constraints from a row: a JSON string (the export's) or a list of
    ``{"kind", "value"}`` mappings, as :class:`autodata.judging.constraints.Constraint` objects."""
    from autodata.judging.constraints import Constraint

    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [c if isinstance(c, Constraint) else Constraint.model_validate(c) for c in value]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> float:
    """verl entry point for autodata exports: the profile in ``data_source`` picks the filter's scorer
    (exact answers: equivalence; otherwise the judge's rubric score, with ``config=`` from reward_kwargs)."""
    kind = _kind(data_source)
    if kind == EXACT_SCORER:
        return compute_verifiable_score(data_source, solution_str, ground_truth, extra_info)
    if kind == CODE_SCORER:
        return compute_code_score(data_source, solution_str, ground_truth, extra_info, **kwargs)
    return compute_rubric_score(data_source, solution_str, ground_truth, extra_info, **kwargs)


# ---------------------------------------------------------------------------------------------- code

_SANDBOXES: dict[str, Any] = {}


def sandbox_of(config: str | Path | Config | None = None) -> Any:
    """The sandbox executor of ``config``'s ``sandbox`` section (a YAML file, a run directory or a
    Config; ``None``: ``$AUTODATA_REWARD_CONFIG`` when set, else the default bubblewrap sandbox).
    Raises UserError naming the fix when it cannot run here (e.g. ``bwrap`` missing)."""
    from autodata.sandbox import SandboxUnavailable, executor_from_config, make_executor

    if config is None and not os.environ.get(CONFIG_ENV):
        key = "default"
        if key not in _SANDBOXES:
            _SANDBOXES[key] = make_executor("bwrap")
    else:
        cfg = load_reward_config(config)
        key = repr(cfg.sandbox.model_dump(mode="json"))
        if key not in _SANDBOXES:
            _SANDBOXES[key] = executor_from_config(cfg.sandbox)
    executor = _SANDBOXES[key]
    try:
        executor.check()
    except SandboxUnavailable as err:
        raise UserError(str(err)) from None
    return executor


def _code_score(sandbox: Any, text: str, tests: str) -> float | None:
    from autodata.sandbox.tasks import extract_code

    code = extract_code(text)
    if code is None:
        return 0.0
    result = sandbox.run(code, tests)
    return None if result.infra_error else result.pass_rate


def _run_code(sandbox: Any, texts: Sequence[str], tests: Sequence[str]) -> list[float | None]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, getattr(sandbox, "workers", 2))) as pool:
        return list(pool.map(lambda pair: _code_score(sandbox, *pair), zip(texts, tests, strict=True)))


def code_reward(
    prompts: Sequence[Any] | None = None,
    completions: Sequence[Any] | None = None,
    *,
    config: str | Path | Config | None = None,
    **columns: Any,
) -> list[float | None]:
    """TRL reward: the fraction of the row's hidden unit tests (``reward_model.ground_truth`` of an
    ``autodata export --format rl`` row of the code profile) each completion's code passes, in the
    sandbox of ``config`` (see :func:`sandbox_of`). 0.0 for a completion without code; ``None`` where
    the sandbox itself failed."""
    items = list(completions or [])
    tests = _references(columns, len(items))
    return _run_code(sandbox_of(config), [completion_text(c) for c in items], tests)


def compute_code_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    *,
    config: str | Path | Config | None = None,
    **kwargs: Any,
) -> float:
    """verl: the fraction of the hidden unit tests (``ground_truth``) the response's code passes.

    Raises RuntimeError when the sandbox itself failed (verl needs a number; a made-up 0 would train on it).
    """
    value = _code_score(sandbox_of(config), completion_text(solution_str), str(ground_truth))
    if value is None:
        raise RuntimeError("the sandbox failed to run this response's code; see `autodata sandbox run`")
    return value
