"""The YAML configuration, as pydantic v2 models, with errors a user can act on.

Every model forbids unknown keys so a typo (``max_concurency``) is an error naming the dotted key
and the keys that are allowed there, never a silently ignored setting. ``--set a.b.c=value``
overrides are applied to the raw mapping *before* validation, so they are checked exactly like the
file and their errors carry the same dotted paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autodata.errors import ConfigError

ROLE_NAMES = (
    "challenger",
    "quality_verifier",
    "weak_solver",
    "strong_solver",
    "judge",
    "orchestrator",
    "loop_judge",
    "analyzer",
    "implementer",
)


# Declared directives: a run's structured instructions to the challenger and the quality verifier
# (``loop.directives``; the outer loop edits them as the recipe component ``directives``). Each has a
# name, the roles it is shown to, and the text those roles read. The prompts render the chosen ones
# as a fenced ``<directives>`` JSON block, so a model reads the text and a program (the offline
# simulator) reads the names: their effect is declared, never inferred from how instructions are
# worded. Name -> (roles, text).
DIRECTIVES: dict[str, tuple[tuple[str, ...], str]] = {
    "multi_step": (("challenger",), "Ask multi-step questions that need two or more findings of the document."),
    "counterfactual": (("challenger",), "Prefer counterfactual questions: what changes if an assumption fails."),
    "combine_method_result": (
        ("challenger",),
        "Combine a method detail with a result so that generic recall cannot suffice.",
    ),
    "expert_level": (("challenger",), "Make every question extremely hard, at the level of an expert exam."),
    "no_answer_terms_in_context": (("challenger",), "Never restate the answer's key terms in the context."),
    "strict_leakage_check": (("quality_verifier",), "Fail any context that names the key points of the answer."),
}


def directive_entries(names: list[str] | tuple[str, ...], role: str) -> list[dict[str, str]]:
    """The directives among ``names`` shown to ``role``, as the ``<directives>`` block lists them."""
    return [{"name": n, "text": DIRECTIVES[n][1]} for n in names if n in DIRECTIVES and role in DIRECTIVES[n][0]]


def unknown_directives(names: list[str] | tuple[str, ...]) -> list[str]:
    """The names that are not declared directives."""
    return [n for n in names if n not in DIRECTIVES]


# The parts of an endpoint that change its answers (the recipe hash includes them); a simulated
# model's latency does not, its fault rate does.
ANSWER_FIELDS: dict[str, Any] = {
    "provider": True,
    "model": True,
    "sampling": True,
    "extra_body": True,
    "max_repairs": True,
    "structured_output": True,
    "simulation": {"fault_rate"},
}
# What the outer loop's frozen hash includes of each solver/judge endpoint: the same, less the two
# fields that only govern how a malformed structured answer is repaired.
FROZEN_ANSWER_FIELDS: dict[str, Any] = {
    k: v for k, v in ANSWER_FIELDS.items() if k not in {"max_repairs", "structured_output"}
}

# Prefixes of common API keys: an `api_key_env` value starting with one is a key, not a name.
KEY_PREFIXES = ("sk-", "sk_", "gsk_", "hf_", "xai-", "aiza", "pk-", "rk_", "ghp_", "github_pat_", "nvapi-", "r8_")


# Field names whose value is a credential whatever it looks like (headers, query parameters, body keys).
SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "api_key",
        "apikey",
        "x-api-key",
        "x-goog-api-key",
        "key",
        "token",
        "access_token",
        "secret",
        "client_secret",
        "password",
    }
)
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def secret_problem(name: str, value: Any) -> str | None:
    """Why ``value`` (under field ``name``) must not be written in a config, or None.

    A config is stored with every run (``run.db``, ``config.json``), so a key must come from the
    environment: write ``${ENV_VAR}`` instead (resolved when the client is built, never stored).
    """
    if not isinstance(value, str) or ENV_REF.match(value.strip()):
        return None
    v = value.strip()
    if v.lower().startswith(KEY_PREFIXES) or v.lower().startswith(("bearer ", "basic ")):
        return "looks like an API key"
    if name.lower() in SECRET_NAMES and v:
        return f"{name!r} holds a credential"
    return None


def resolve_env_refs(values: dict[str, str], where: str) -> dict[str, str]:
    """``${NAME}`` values replaced from the environment; a missing variable is a ConfigError naming the key."""
    out, missing = {}, []
    for k, v in values.items():
        m = ENV_REF.match(v.strip())
        if m is None:
            out[k] = v
        elif m.group(1) in os.environ:
            out[k] = os.environ[m.group(1)]
        else:
            missing.append(f"{where}.{k}: environment variable {m.group(1)} is not set")
    if missing:
        raise ConfigError("values taken from the environment are missing", details=missing)
    return out


def _walk_secrets(node: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
    if isinstance(node, dict):
        for k, v in node.items():
            why = secret_problem(str(k), v)
            if why:
                return (*path, str(k)), why
            found = _walk_secrets(v, (*path, str(k)))
            if found:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            why = secret_problem(path[-1] if path else "", v)
            if why:
                return (*path, str(i)), why
            found = _walk_secrets(v, (*path, str(i)))
            if found:
                return found
    return None


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for labels, messages and stored configs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Price(_Strict):
    """USD per million tokens; used for live cost and the run summary."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)


class Sampling(_Strict):
    """Default sampling parameters for an endpoint; a call may override any of them."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)


class Simulation(_Strict):
    """Knobs of the offline simulated models (``provider: simulated`` only)."""

    latency_ms: float = Field(0.0, ge=0, description="Added to every simulated call.")
    fault_rate: float = Field(0.04, ge=0, le=1, description="Share of structured answers with realistic defects.")


class Endpoint(_Strict):
    """One named model: where it lives, how hard we may push it, what it costs."""

    provider: Literal["openai", "simulated"]
    model: str = Field(min_length=1)
    base_url: list[str] | None = None
    api_key_env: str | None = None
    max_concurrency: int = Field(32, ge=1, le=4096)
    min_concurrency: int = Field(1, ge=1)
    rpm: int | None = Field(None, ge=1, description="Requests per minute budget.")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute budget.")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0, le=100)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    max_retry_after_s: float = Field(
        120.0, ge=0, description="A Retry-After longer than this fails the call for a later retry instead of waiting."
    )
    price: Price = Field(default_factory=Price)
    sampling: Sampling = Field(default_factory=Sampling)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    default_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent with every request; a value may be ${ENV_VAR}."
    )
    default_query: dict[str, str] = Field(
        default_factory=dict, description="Query parameters on every request (Azure: api-version); ${ENV_VAR} allowed."
    )
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    structured_output: Literal["json_schema", "json_object", "text"] = "json_schema"
    max_repairs: int = Field(2, ge=0, le=10, description="Re-asks after invalid structured output.")
    http_transport: Literal["aiohttp", "httpx", "direct"] = Field(
        "aiohttp", description="openai SDK over aiohttp (default) or httpx, or direct aiohttp without the SDK."
    )
    supports_n: bool = Field(
        False,
        description="The server takes n > 1 (vLLM, SGLang): the k samples of one prompt go as one request "
        "(one prefill); each sample is still cached under its own key.",
    )
    simulation: Simulation | None = None

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        return v

    @field_validator("base_url")
    @classmethod
    def _urls(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("give at least one URL, or leave base_url out")
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return [u.rstrip("/") for u in v]

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        looks_like_key = v.lower().startswith(KEY_PREFIXES) or len(v) > 64
        if not v or looks_like_key or not all(c.isalnum() or c == "_" for c in v):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), never the key itself")
        return v

    @model_validator(mode="after")
    def _no_secrets(self) -> Endpoint:
        """Keys live in the environment: a key-shaped literal in a stored field is refused (use ${ENV_VAR})."""
        for fld in ("extra_body", "default_headers", "default_query"):
            found = _walk_secrets(getattr(self, fld), (fld,))
            if found:
                where, why = found
                raise _LocatedError(
                    where,
                    f"{why}; never write a key in the config (it is stored with every run): "
                    "write ${ENV_VAR} and set that variable (default_headers/default_query), or use api_key_env",
                )
        for fld in ("extra_body",):
            if any(isinstance(v, str) and ENV_REF.match(v) for v in self.extra_body.values()):
                raise _LocatedError((fld,), "${ENV_VAR} is resolved in default_headers and default_query only")
        return self

    @model_validator(mode="after")
    def _url_credentials(self) -> Endpoint:
        from urllib.parse import parse_qsl, urlsplit

        for i, url in enumerate(self.base_url or []):
            parts = urlsplit(url)
            for name, value in parse_qsl(parts.query):  # ?api-key=... (Azure), ?key=... (Gemini native)
                why = secret_problem(name, value)
                if why:
                    raise _LocatedError(
                        ("base_url", str(i)),
                        f"query parameter {why}; never write a key in the config (it is stored with every run): "
                        "put it in default_query as ${ENV_VAR} (or default_headers), or use api_key_env",
                    )
            if (parts.username or parts.password) and self.api_key_env:
                raise _LocatedError(
                    ("base_url", str(i)),
                    "has user:password@ and api_key_env is set: both would be the Authorization header; "
                    "keep one (user:password@ is sent as HTTP basic auth)",
                )
        return self

    @model_validator(mode="after")
    def _provider_rules(self) -> Endpoint:
        if self.provider == "simulated":
            if self.base_url is not None:
                raise _LocatedError(("base_url",), "not used by provider 'simulated'; remove it")
            if self.simulation is None:
                self.simulation = Simulation()
        elif self.simulation is not None:
            raise _LocatedError(("simulation",), "only allowed with provider 'simulated'")
        if self.min_concurrency > self.max_concurrency:
            raise _LocatedError(("min_concurrency",), f"must not exceed max_concurrency ({self.max_concurrency})")
        return self

    def api_key(self) -> str | None:
        """The key, read from the environment at call time so it never sits in config or logs."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env)


class CacheConfig(_Strict):
    enabled: bool = True
    path: str | None = Field(
        None, description="SQLite file; default $AUTODATA_CACHE_DIR or ~/.cache/autodata, calls.sqlite"
    )

    def resolved_path(self) -> Path:
        if self.path:
            return Path(os.path.expanduser(self.path))
        base = os.environ.get("AUTODATA_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "autodata"
        )
        return Path(base) / "calls.sqlite"


class GenerateConfig(_Strict):
    model: str | None = Field(None, description="Endpoint name used by `autodata generate`.")
    n: int = Field(1, ge=1, le=1000)


DEFAULT_DOCUMENT_TOKENS = 16_000  # documents.max_tokens when unset and no context window is known


class DocumentsConfig(_Strict):
    """Where the documents come from and how much of each the challenger sees."""

    paths: list[str] = Field(default_factory=list, description="Folders, globs, files, hf://name.")
    text_field: str = "text"
    title_field: str = "title"
    id_field: str | None = None
    hf_split: str = "train"
    min_chars: int = Field(200, ge=1)
    max_bytes: int = Field(20_000_000, ge=1)
    max_tokens: int | None = Field(
        None,
        ge=200,
        description="The challenger's budget for one document, in estimated tokens. Unset: from the "
        "challenger's context window when the pre-flight learns it, else 16000.",
    )

    def budget(self, context_window: int | None = None, answer_tokens: int = 2048, overhead_tokens: int = 1500) -> int:
        """The document budget in tokens: ``max_tokens`` when set; else what fits a known context window
        beside the prompt (``overhead_tokens``) and the answer (``answer_tokens``), at least 200; else
        :data:`DEFAULT_DOCUMENT_TOKENS`."""
        if self.max_tokens is not None:
            return self.max_tokens
        if context_window:
            return max(200, context_window - overhead_tokens - answer_tokens)
        return DEFAULT_DOCUMENT_TOKENS

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class AcceptanceConfig(_Strict):
    # None: the profile's own preset (rubric-qa -> deployed, verifiable -> verifiable, legal -> judge)
    preset: Literal["deployed", "prose", "verifiable", "judge", "code"] | None = None
    overrides: dict[str, float | int | bool | None] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_thresholds(self) -> AcceptanceConfig:
        from autodata.judging.acceptance import preset  # a leaf module: importing it keeps the arrows one-way

        try:
            preset(self.preset or "deployed", **self.overrides)
        except ValueError as exc:
            raise _LocatedError(("overrides",), str(exc)) from None
        return self


class RubricConfig(_Strict):
    """The structural rules a challenger's rubric must meet (``judging.rubric.RubricRules``).

    Defaults follow the paper's finding: positive integer weights capped at 7; negative criteria
    optional but available. A frozen setting: the outer loop never edits it.
    """

    min_positive: int = Field(3, ge=1, le=50, description="Fewest positive criteria.")
    max_positive: int = Field(12, ge=1, le=50, description="Most positive criteria.")
    min_negative: int = Field(0, ge=0, le=50, description="Fewest negative criteria (0: optional).")
    max_negative: int = Field(5, ge=0, le=50, description="Most negative criteria (0: none allowed).")
    max_weight: int = Field(7, ge=1, le=100, description="Cap on a criterion's absolute integer weight.")

    @model_validator(mode="after")
    def _ordered(self) -> RubricConfig:
        for low, high in (("min_positive", "max_positive"), ("min_negative", "max_negative")):
            if getattr(self, low) > getattr(self, high):
                raise _LocatedError((low,), f"must be at most {high} ({getattr(self, high)})")
        return self

    def rules(self) -> Any:
        """The ``RubricRules`` these settings describe."""
        from autodata.judging.rubric import RubricRules  # a leaf module

        return RubricRules(
            min_positive=self.min_positive,
            max_positive=self.max_positive,
            min_negative=self.min_negative,
            max_negative=self.max_negative,
            max_abs_weight=self.max_weight,
        )


class LoopConfig(_Strict):
    """The inner loop's knobs (the orchestrator's workflow for one document)."""

    profile: Literal["rubric-qa", "verifiable", "legal", "code", "instruction"] = "rubric-qa"
    orchestrator: Literal["scripted", "agent"] = "scripted"
    max_rounds: int = Field(5, ge=1, le=50)
    max_agent_steps: int = Field(
        40, ge=4, le=400, description="Agent orchestrator: tool calls per document before it is stopped."
    )
    # None: the profile's default (3 and 3; 4 and 4 for verifiable, whose preset counts correct of 4)
    k_weak: int | None = Field(None, ge=1, le=32)
    k_strong: int | None = Field(None, ge=1, le=32)
    weak_first: bool = True
    adaptive_stopping: bool = Field(
        False, description="Draw solver attempts in waves (2, then 1) and stop once the verdict cannot change."
    )
    min_valid_attempts: int | None = Field(
        None,
        ge=1,
        le=32,
        description="Valid (scored) solver attempts per side the acceptance test needs; none: all k. "
        "Replies without a usable answer are attempt errors, never scored.",
    )
    max_resamples: int = Field(
        2, ge=0, le=8, description="Waves of new samples that replace attempt errors before the document fails."
    )
    final_quality_check: bool = True
    weak_temperature: float | None = Field(0.7, ge=0, le=2)
    strong_temperature: float | None = Field(0.7, ge=0, le=2)
    concurrency: int | Literal["auto"] = Field(
        "auto",
        description="Documents in flight: 'auto' admits a document while an endpoint of the run has a free "
        "slot (max_concurrency) and none has a full window waiting; a number also caps it.",
    )

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 4096:
            raise ValueError("must be 'auto' or a number of documents from 1 to 4096")
        return v

    acceptance: AcceptanceConfig = Field(default_factory=AcceptanceConfig)
    rubric: RubricConfig = Field(default_factory=RubricConfig)
    judge_sees_context: bool = Field(
        False,
        description="Show the judge the example's context (fenced as data) so claims are checked against it; "
        "off by default, as in the paper (the judge sees question, rubric and answer).",
    )
    challenger_instructions: str = ""
    verifier_instructions: str = ""
    orchestrator_instructions: str = ""
    directives: list[str] = Field(
        default_factory=list, description="Declared directives for the challenger and verifier (config.DIRECTIVES)."
    )

    @field_validator("directives")
    @classmethod
    def _known_directives(cls, v: list[str]) -> list[str]:
        unknown = unknown_directives(v)
        if unknown:
            raise ValueError(f"unknown directive(s) {', '.join(unknown)}; allowed: {', '.join(DIRECTIVES)}")
        return list(dict.fromkeys(v))


class OptimizeConfig(_Strict):
    """The outer loop: evolve the editable half of the recipe against validation documents."""

    iterations: int = Field(10, ge=1, le=10000, description="Children proposed before the run stops.")
    in_flight: int = Field(1, ge=1, le=64, description="Iterations run at once (committed in order).")
    train_docs: int = Field(8, ge=1, description="Documents in the training split.")
    val_docs: int = Field(8, ge=1, description="Documents in the validation split (selection).")
    test_docs: int = Field(8, ge=0, description="Documents in the test split (final report only).")
    minibatch: int = Field(4, ge=1, description="Training documents the parent runs on per iteration.")
    temperature: float = Field(0.1, gt=0, le=10, description="Boltzmann temperature for picking parents.")
    repeats: int = Field(2, ge=1, le=20, description="Validation evaluations per candidate (seeds differ).")
    margin: float = Field(0.0, ge=0, le=1, description="A child must beat its parent's mean by more than this.")
    test: Literal["margin", "paired"] = Field(
        "margin",
        description=(
            "How a child is kept. Both re-evaluate the parent on the child's validation documents and seeds "
            "(paired). 'margin': the child's mean beats the parent's by more than optimize.margin. 'paired': "
            "that, and an exact one-sided McNemar test on the per-document outcomes is significant at "
            "optimize.alpha."
        ),
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of optimize.test: paired.")
    analyzer_budget_tokens: int = Field(
        12000,
        ge=0,
        description="Estimated tokens of full round exchanges (example, answers, marks) the analyzer reads.",
    )
    max_cost_usd: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)
    canary_size: int = Field(4, ge=0, le=100, description="Calibration examples re-checked; 0 switches it off.")
    canary_every: int = Field(5, ge=1, description="Iterations between canary checks.")
    canary_tolerance: float = Field(
        0.25, gt=0, le=1, description="Smallest shift of the mean weak or strong score that stops the run."
    )
    canary_alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="A shift stops the run only if a permutation test over the canary's attempts gives p below this.",
    )
    knob_ranges: dict[Literal["max_rounds", "max_agent_steps"], tuple[int, int]] = Field(
        default_factory=lambda: {"max_rounds": (1, 8)}, description="Numeric knobs the optimizer may set."
    )


class ExecutorConfig(_Strict):
    """Where episodes run: this process (default), or a pool of Ray worker actors."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(
        None, description="Ray cluster address (e.g. 'auto' or 'ray://head:10001'); none: local."
    )
    workers: int = Field(2, ge=1, le=4096, description="Ray worker actors; endpoint budgets are shared out among them.")
    max_attempts: int = Field(3, ge=1, le=20, description="Tries per document when a worker dies under it.")


class DatasetConfig(_Strict):
    """How exports describe the data (the dataset card); no effect on the run or its recipe hash."""

    name: str | None = Field(None, description="The dataset's name on its card (default: autodata-PROFILE-RUNDIR).")
    license: str = Field(
        "unknown", min_length=1, description="License of the exported data (a Hub license id, e.g. cc-by-4.0)."
    )


class SandboxLimits(_Strict):
    """Resource limits of one sandboxed test run (see ``autodata.sandbox.Limits``)."""

    cpu_seconds: int = Field(10, ge=1, le=3600)
    wall_seconds: float = Field(20.0, gt=0, le=7200)
    memory_mb: int = Field(512, ge=32, le=65536)
    processes: int = Field(32, ge=1, le=4096)
    output_bytes: int = Field(1_000_000, ge=1000)
    file_size_bytes: int = Field(16_000_000, ge=1000)
    tmp_bytes: int = Field(64_000_000, ge=1_000_000)


class SandboxConfig(_Strict):
    """Where generated code runs (the ``code`` profile, ``autodata sandbox run``, the code reward).

    ``bwrap`` (default): bubblewrap namespaces plus rlimits. ``subprocess``: rlimits only, NO
    filesystem or network isolation; an explicit opt-in that every summary repeats. ``http``: a
    SandboxFusion-style service at ``url`` (``POST {url}/run_code``).
    """

    kind: Literal["bwrap", "subprocess", "http"] = "bwrap"
    url: str | None = Field(None, description="kind: http only: the service's base URL.")
    api_key_env: str | None = Field(None, description="kind: http only: env var holding a bearer token.")
    workers: int = Field(2, ge=1, le=1024, description="Sandbox runs at once in this process.")
    limits: SandboxLimits = Field(default_factory=SandboxLimits)

    @model_validator(mode="after")
    def _url_for_http(self) -> SandboxConfig:
        if self.kind == "http" and not self.url:
            raise _LocatedError(("url",), "sandbox.kind: http needs sandbox.url (e.g. http://127.0.0.1:8080)")
        return self


class Config(_Strict):
    seed: int = 0
    models: dict[str, Endpoint] = Field(min_length=1)
    roles: dict[Literal[ROLE_NAMES], str] = Field(default_factory=dict)  # type: ignore[valid-type]
    cache: CacheConfig = Field(default_factory=CacheConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    optimize: OptimizeConfig = Field(default_factory=OptimizeConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = sorted(self.models)
        for role, endpoint in self.roles.items():
            if endpoint not in self.models:
                raise _LocatedError(("roles", role), _unknown_model(endpoint, names))
        if self.generate.model is not None and self.generate.model not in self.models:
            raise _LocatedError(("generate", "model"), _unknown_model(self.generate.model, names))
        return self

    def redacted_dump(self) -> dict[str, Any]:
        """The config as JSON with credentials in URLs masked: what may be stored or shown."""
        data = self.model_dump(mode="json")
        for ep in data["models"].values():
            if ep.get("base_url"):
                ep["base_url"] = [redact_url(u) for u in ep["base_url"]]
        if data.get("sandbox", {}).get("url"):
            data["sandbox"]["url"] = redact_url(data["sandbox"]["url"])
        return data

    def fingerprint(self) -> str:
        """Hash of the validated config, recorded in summaries so runs can be told apart."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def require_roles(self, roles: tuple[str, ...], command: str) -> dict[str, str]:
        """The endpoint of each role a command needs; a missing one is a config error naming the key."""
        missing = [r for r in roles if r not in self.roles]
        if missing:
            raise ConfigError(
                f"`{command}` needs these roles mapped to models",
                details=[f"roles.{r}: required; one of the models: {', '.join(sorted(self.models))}" for r in missing],
            )
        return {r: self.roles[r] for r in roles}  # type: ignore[index]

    def endpoint_for(self, name: str) -> Endpoint:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"unknown model {name!r}; defined models: {', '.join(sorted(self.models))}") from None


class _LocatedError(ValueError):
    """Raised by cross-field validators to name the exact key (relative to the validated model)."""

    def __init__(self, rel_loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.rel_loc = rel_loc


def _unknown_model(value: str, allowed: list[str]) -> str:
    return f"unknown model {value!r}; defined models: {', '.join(allowed)}"


# ----------------------------------------------------------------------------------------------
# Loading, overrides and error messages


def parse_override(spec: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a","b","c"], value); the value is read as a YAML scalar or list."""
    if "=" not in spec:
        raise ConfigError(f"--set {spec!r}: expected KEY.PATH=VALUE, e.g. --set models.weak.rpm=600")
    key, raw = spec.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"--set {spec!r}: the key must be a dotted path like models.weak.rpm")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for spec in overrides:
        path, value = parse_override(spec)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            elif not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {spec!r}: {where} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, *, default_text: str | None = None
) -> Config:
    """Read YAML (or the embedded default text), apply overrides, validate; ConfigError on any problem."""
    if path is None:
        if default_text is None:
            raise ConfigError("no config file given")
        text, source = default_text, "<embedded default config>"
    else:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"{p} is a directory; give the path of a YAML config file")
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        if not p.is_file():
            raise ConfigError(f"{p} is not a regular file (a pipe or device); give the path of a YAML config file")
        source = str(p)
        try:
            text = p.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read the config file {p}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{source}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                "save the config as UTF-8"
            ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    apply_overrides(data, overrides or [])
    return validate_config(data, source)


def validate_config(data: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        details = [format_error(err) for err in exc.errors(include_url=False)]
        noun = "problem" if len(details) == 1 else "problems"
        raise ConfigError(f"{source}: {len(details)} {noun} in the configuration", details=details) from None


def format_error(err: Any) -> str:
    """One pydantic error as ``dotted.path: what is wrong (what is allowed)``."""
    loc = [str(p) for p in err.get("loc", ()) if not _is_internal_loc(p)]
    etype = err.get("type", "")
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _LocatedError):
        loc = loc + list(inner.rel_loc)
        return f"{'.'.join(loc)}: {inner}"
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        if etype == "literal_error":
            return f"{'.'.join(loc)}: unknown name {loc[-1]!r}; expected {ctx.get('expected')}"
    dotted = ".".join(loc) or "(top level)"
    given = err.get("input")
    if etype == "extra_forbidden":
        parent_loc, key = loc[:-1], loc[-1] if loc else "?"
        allowed = _allowed_keys(parent_loc)
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{dotted}: unknown key {key!r}{hint}"
    if etype == "missing":
        return f"{dotted}: required key is missing"
    if etype == "literal_error":
        return f"{dotted}: {given!r} is not allowed; expected {ctx.get('expected')}"
    msg = err.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ").replace("Input should be", "must be")
    if etype in ("dict_type", "model_type"):
        msg = "must be a mapping of keys to values"
    if etype.endswith(("_type", "_parsing")) or etype in {
        "greater_than_equal",
        "less_than_equal",
        "greater_than",
        "less_than",
        "too_short",
    }:
        return f"{dotted}: {msg} (got {given!r})"
    return f"{dotted}: {msg}"


def _is_internal_loc(part: Any) -> bool:
    # pydantic adds union-member tags such as 'list[str]' or 'function-after[...]' to locations.
    s = str(part)
    return "[" in s and s.split("[", 1)[0] in {"list", "function-after", "function-before", "str", "dict"}


def _allowed_keys(loc: list[str]) -> list[str]:
    """Walk the model tree along ``loc`` to list the field names a user may write there."""
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            # dict values (models.<name>) keep the same value type
            if isinstance(model, _DictOf):
                model = model.value
                continue
            return []
        model = _unwrap(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


class _DictOf:
    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(annotation: Any) -> Any:
    import typing

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return _DictOf(_unwrap(args[1]))
    if args and origin is not None and origin is not Literal:
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                return a
    return annotation
