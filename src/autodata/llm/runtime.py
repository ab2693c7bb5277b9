"""The model runtime: the one door through which autodata calls any model.

``ModelRuntime`` owns one :class:`EndpointClient` per named endpoint, the call cache, and the usage
meter. Callers name an endpoint and a role (for cost accounting) and get a :class:`Completion` or a
validated structured value back; retries, pacing, replicas, caching and seeds are handled here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from autodata.config import Config, Endpoint, redact_url, resolve_env_refs
from autodata.errors import ConfigError
from autodata.llm.backends import Backend, DirectBackend, OpenAIBackend
from autodata.llm.cache import CallCache
from autodata.llm.endpoint import EndpointClient, WaitHook
from autodata.llm.providers import get_provider
from autodata.llm.replies import holds_answer, problem_code
from autodata.llm.structured import (
    OutputError,
    Validator,
    json_schema_validator,
    parse_json,
    pydantic_validator,
    repair_prompt,
    schema_for,
)
from autodata.llm.tokens import estimate_tokens
from autodata.llm.types import (
    CallError,
    Completion,
    LogicalRequest,
    ResponseSchema,
    StructuredFailure,
    StructuredOutputError,
    StructuredResult,
    derive_seed,
)
from autodata.llm.usage import UsageMeter

REPAIR_ECHO_CHARS = 6000  # how much of a bad answer is shown back to the model on re-ask


def _violates(obj: Any, schema: ResponseSchema) -> bool:
    """The value breaks the JSON Schema itself (not only a check our validator adds beyond it)."""
    try:
        json_schema_validator(schema.schema)(obj)
    except OutputError:
        return True
    return False


def endpoint_identity(ep: Endpoint) -> str:
    """What tells this endpoint's answers apart from another's with the same ``model`` string: the
    sorted set of its base URLs (replicas of one endpoint share answers; two servers that both call
    their model ``local`` do not). Empty for the provider's default URL and for the simulator, so
    their cache keys are the ones earlier versions wrote."""
    if ep.provider == "simulated" or not ep.base_url:
        return ""
    return "|".join(sorted(redact_url(u) for u in ep.base_url))


def check_endpoints(config: Config) -> None:
    """Checks that need knowledge of the providers (not expressible in the config schema alone)."""
    problems = []
    for name, ep in config.models.items():
        if ep.provider != "openai":
            problem = get_provider(ep.provider).check(ep)
            if problem:
                problems.append(f"models.{name}.model: {problem}")
    if problems:
        raise ConfigError("the configuration names models that do not exist", details=problems)


def check_api_keys(config: Config, names: Sequence[str] | None = None) -> None:
    """Keys are read from the environment; a missing variable is a user error, named here."""
    problems = []
    for name in names or config.models:
        ep = config.models[name]
        if ep.api_key_env and ep.api_key() is None:
            problems.append(f"models.{name}.api_key_env: environment variable {ep.api_key_env} is not set")
    if problems:
        raise ConfigError("API keys are missing", details=problems)


def split_base_url(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL for the client, query parameters, headers) of a configured ``base_url``.

    A query string (Azure's classic ``…/deployments/NAME?api-version=…``) would be mangled by the client
    appending ``/chat/completions`` after it: it is sent as query parameters on every request instead.
    ``user:password@`` becomes an HTTP basic ``Authorization`` header (config validation refuses it
    together with ``api_key_env``).
    """
    import base64
    from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    headers: dict[str, str] = {}
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        user, pw = unquote(parts.username or ""), unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        netloc = netloc.rsplit("@", 1)[1]
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return clean, query, headers


def make_backends(name: str, ep: Endpoint, global_seed: int) -> list[Backend]:
    """The transports of one endpoint: one per replica URL, or those its registered provider builds."""
    if ep.provider != "openai":
        return get_provider(ep.provider).backends(ep, global_seed)
    key = ep.api_key()
    headers = resolve_env_refs(ep.default_headers, f"models.{name}.default_headers")
    query = resolve_env_refs(ep.default_query, f"models.{name}.default_query")
    out: list[Backend] = []
    for url in list(ep.base_url) if ep.base_url else [None]:
        label = redact_url(url) if url else "default"
        url_query: dict[str, str] = {}
        url_headers: dict[str, str] = {}
        if url is not None:
            url, url_query, url_headers = split_base_url(url)
        h = {**url_headers, **headers}
        q = {**url_query, **query}
        if ep.http_transport == "direct":
            out.append(
                DirectBackend(
                    url,
                    key,
                    ep.timeout_s,
                    label,
                    max_connections=ep.max_concurrency,
                    default_headers=h,
                    default_query=q,
                )
            )
        else:
            out.append(
                OpenAIBackend(
                    url,
                    key,
                    ep.timeout_s,
                    label=label,
                    max_connections=ep.max_concurrency,
                    transport=ep.http_transport,
                    default_headers=h,
                    default_query=q,
                )
            )
    return out


class _Flight:
    """An identical request already on its way: later askers wait for its answer."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.result: Completion | None = None
        self.error: BaseException | None = None


async def _settle(call: Any) -> Completion | CallError:
    try:
        return await call
    except CallError as err:
        return err


async def _pick(group: asyncio.Future[list[Completion | CallError]], j: int) -> Completion | CallError:
    return (await group)[j]


def _split_usage(choices: list[Completion]) -> None:
    """One reply's usage shared out: the prompt counted once (first choice), the output by each
    choice's share of the text (servers report the output of all choices as one number)."""
    total = choices[0].usage
    est = [max(1, estimate_tokens(c.text) + estimate_tokens(c.reasoning or "")) for c in choices]
    shares = [total.output_tokens * e // sum(est) for e in est]
    shares[0] += total.output_tokens - sum(shares)
    for i, c in enumerate(choices):
        c.usage = replace(total, input_tokens=total.input_tokens if i == 0 else 0, output_tokens=shares[i])


class ModelRuntime:
    def __init__(
        self,
        config: Config,
        *,
        cache: CallCache | None = None,
        meter: UsageMeter | None = None,
        backends: dict[str, list[Backend]] | None = None,
    ) -> None:
        check_endpoints(config)
        self.config = config
        self.seed = config.seed
        self.cache = cache
        self.meter = meter or UsageMeter()
        self.endpoints: dict[str, EndpointClient] = {}
        self._built: dict[str, bool] = {}
        self._backends_override = backends or {}
        self._flights: dict[str, _Flight] = {}
        self.deduplicated = 0
        self.forgotten = 0  # structured answers without JSON from a real server, deleted from the cache
        # (endpoint, seconds, why) for waits of a second or more: a progress line shows them
        self.on_wait: WaitHook | None = None

    @classmethod
    def from_config(cls, config: Config, *, use_cache: bool = True) -> ModelRuntime:
        cache = CallCache(config.cache.resolved_path()) if (use_cache and config.cache.enabled) else None
        return cls(config, cache=cache)

    def _cached(self, key: str) -> dict[str, Any] | None:
        """The stored answer of ``key``; None when there is none, or when the stored reply holds no answer
        (``replies.NO_ANSWER``: a content filter, reasoning only, ...; written by an earlier version): that
        request goes to the server again."""
        if self.cache is None:
            return None
        hit = self.cache.get(key)
        return hit if hit is not None and holds_answer(hit.get("problem")) else None

    def _store(self, key: str, model: str, completion: Completion) -> None:
        """Cache a reply unless it holds no answer (see ``replies.NO_ANSWER``)."""
        if self.cache is not None and holds_answer(completion.problem):
            self.cache.put(key, model, completion.to_cache())

    def endpoint(self, name: str) -> EndpointClient:
        client = self.endpoints.get(name)
        if client is None:
            ep = self.config.endpoint_for(name)
            backends = self._backends_override.get(name)
            if backends is None:
                check_api_keys(self.config, [name])
                backends = make_backends(name, ep, self.seed)
            client = self.endpoints[name] = EndpointClient(name, ep, backends, self.meter)
            client.identity = endpoint_identity(ep)
            client.on_wait = self._on_wait
            if ep.provider != "openai":
                # a provider's answers may depend on more than the request (a simulator's version,
                # fault rate and seed): that goes into every cache key of this endpoint
                client.namespace = get_provider(ep.provider).namespace(ep, self.seed)
        return client

    def _on_wait(self, endpoint: str, seconds: float, why: str) -> None:
        if self.on_wait is not None:
            self.on_wait(endpoint, seconds, why)

    @property
    def simulated(self) -> list[str]:
        """Endpoints configured as ``provider: simulated`` (see :meth:`simulated_endpoints` for the
        ones that turned out simulated on the wire too)."""
        return [n for n, ep in self.config.models.items() if ep.provider == "simulated"]

    def simulated_endpoints(self) -> list[str]:
        """Endpoints whose answers are simulated: ``provider: simulated``, or a server that said so
        (``serve-sim`` behind ``provider: openai`` sends ``system_fingerprint: autodata-simulated``).
        Sorted; what banners, summaries, cards and reports label as simulated."""
        names = set(self.simulated)
        names.update(n for n, c in self.endpoints.items() if c.simulated_seen)
        return sorted(names)

    # ------------------------------------------------------------------ plain completions

    def request(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        *,
        sample: int = 0,
        params: dict[str, Any] | None = None,
        schema: ResponseSchema | None = None,
        json_mode: bool = False,
    ) -> LogicalRequest:
        """The logical request (and so the cache key) for a call; sample i gets seed f(run seed, i)."""
        client = self.endpoint(model)
        ep = client.cfg
        merged = dict(client.sampling_defaults)
        if params:
            merged.update({k: v for k, v in params.items() if v is not None and k not in client.omit})
        if "seed" not in client.omit:
            merged.setdefault("seed", derive_seed(self.seed, sample))
        return LogicalRequest(
            model=ep.model,
            messages=tuple(messages),
            params=merged,
            schema=schema,
            extra_body=client.extra_body,
            sample=sample,
            json_mode=json_mode,
            namespace=client.namespace,
            endpoint_id=client.identity,
        )

    async def complete(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        *,
        role: str = "default",
        sample: int = 0,
        params: dict[str, Any] | None = None,
        schema: ResponseSchema | None = None,
        json_mode: bool = False,
    ) -> Completion:
        """One cached call. Identical calls in flight at once share one request."""
        client = self.endpoint(model)
        req = self.request(model, messages, sample=sample, params=params, schema=schema, json_mode=json_mode)
        key = req.cache_key()
        hit = self._cached(key)
        if hit is not None:
            done = Completion.from_cache(hit, key=key, sample=sample, seed=req.params.get("seed"))
            client.note_fingerprint(done.system_fingerprint)
            self.meter.record_hit(model, role, done.usage, client.cfg.price)
            return done
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if isinstance(flight.error, asyncio.CancelledError):
                continue  # the caller that sent it was cancelled, not this one: ask again
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            self.deduplicated += 1
            self.meter.record_hit(model, role, flight.result.usage, client.cfg.price)
            return replace(flight.result, cached=True)
        flight = self._flights[key] = _Flight()
        try:
            completion = await client.call(req, role)
            completion.key = key
            client.note_fingerprint(completion.system_fingerprint)
            self._store(key, req.model, completion)
            flight.result = completion
            return completion
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            flight.done.set()
            del self._flights[key]

    async def complete_n(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        k: int,
        *,
        role: str = "default",
        params: dict[str, Any] | None = None,
        first_sample: int = 0,
    ) -> list[Completion | CallError]:
        """k samples, each cached under its own key (sample i has its own seed); see ``complete_each``."""
        tasks = self.complete_each(model, messages, k, role=role, params=params, first_sample=first_sample)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, CallError):
                raise r
        return list(results)  # type: ignore[arg-type]

    def complete_each(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        k: int,
        *,
        role: str = "default",
        params: dict[str, Any] | None = None,
        first_sample: int = 0,
    ) -> list[asyncio.Future[Completion | CallError]]:
        """k samples, started now, each a future done as soon as its own answer is in (a CallError is
        returned, not raised), so a caller can judge the first answers while later ones still generate.

        Sample ``first_sample + i`` has seed f(run seed, first_sample + i) and its own cache key. On an
        endpoint with ``supports_n`` (vLLM, SGLang: ``n`` > 1 shares one prefill among the samples), the
        samples missing from the cache go as one request with ``n`` = how many are missing, seeded with
        the first missing sample's seed; choice j is stored as the j-th missing sample. The same config
        and cache state give the same request, hence (on a server that honours ``seed``) the same answers.
        """
        if self.endpoint(model).cfg.supports_n and k > 1:
            group = asyncio.ensure_future(self._complete_group(model, messages, k, role, params, first_sample))
            return [asyncio.ensure_future(_pick(group, j)) for j in range(k)]
        return [
            asyncio.ensure_future(
                _settle(self.complete(model, messages, role=role, sample=first_sample + i, params=params))
            )
            for i in range(k)
        ]

    async def _complete_group(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        k: int,
        role: str,
        params: dict[str, Any] | None,
        first: int,
    ) -> list[Completion | CallError]:
        """``complete_each`` on an endpoint that takes ``n``: cache hits, then one request for the rest."""
        client = self.endpoint(model)
        reqs = [self.request(model, messages, sample=first + j, params=params) for j in range(k)]
        keys = [r.cache_key() for r in reqs]
        out: list[Completion | CallError | None] = [None] * k
        for j, key in enumerate(keys):
            hit = self._cached(key)
            if hit is not None:
                done = Completion.from_cache(hit, key=key, sample=first + j, seed=reqs[j].params.get("seed"))
                self.meter.record_hit(model, role, done.usage, client.cfg.price)
                out[j] = done
        missing = [j for j in range(k) if out[j] is None]
        if missing:
            lead = reqs[missing[0]]
            wire = replace(lead, params={**lead.params, "n": len(missing)}) if len(missing) > 1 else lead
            try:
                head = await client.call(wire, role, all_choices=True)
            except CallError as err:
                return [err if o is None else o for o in out]
            got = [head, *head.siblings]
            head.siblings = []
            _split_usage(got)
            for j, c in zip(missing, got, strict=False):
                c.key, c.sample, c.seed = keys[j], first + j, reqs[j].params.get("seed")
                self._store(keys[j], lead.model, c)
                out[j] = c
            for j in missing[len(got) :]:
                out[j] = CallError(
                    f"{model}: asked for n={len(missing)} choices, the server sent {len(got)}; "
                    f"set models.{model}.supports_n: false",
                    kind="malformed_response",
                    endpoint=model,
                )
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ structured output

    async def structured(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        output: type[BaseModel] | None = None,
        *,
        schema: ResponseSchema | None = None,
        validator: Validator | None = None,
        role: str = "default",
        sample: int = 0,
        params: dict[str, Any] | None = None,
        json_mode: bool = False,
    ) -> StructuredResult:
        """A validated value: ask with a schema, parse and repair, and re-ask (bounded) when invalid.

        Each rejected answer is recorded in the result (and counted in the meter); when the budget
        of ``max_repairs`` re-asks is spent, :class:`StructuredOutputError` carries them all.
        """
        if output is not None:
            schema = schema or schema_for(output)
            validator = validator or pydantic_validator(output)
        if validator is None:
            raise TypeError("structured() needs an output model or a validator")
        client = self.endpoint(model)
        base = list(messages)
        convo = base
        failures: list[StructuredFailure] = []
        misses = 0  # answers in a row without any JSON
        for attempt in range(client.cfg.max_repairs + 1):
            completion = await self.complete(
                model, convo, role=role, sample=sample, params=params, schema=schema, json_mode=json_mode
            )
            code = problem_code(completion.problem)
            not_json = False
            try:
                if code is not None and code != "truncated":
                    # no answer at all (filtered, provider error, only reasoning...): asked again, never parsed
                    raise OutputError(f"the reply held no answer ({completion.problem})")
                try:
                    obj, repairs = parse_json(completion.text, completion.finish_reason)
                except OutputError:
                    not_json = completion.finish_reason != "length"
                    raise
                try:
                    value, notes = validator(obj)
                except OutputError:
                    not_json = schema is not None and _violates(obj, schema)
                    raise
            except OutputError as err:
                failures.append(
                    StructuredFailure(
                        attempt=attempt,
                        error=str(err),
                        text_excerpt=completion.text[:300],
                        finish_reason=completion.finish_reason,
                    )
                )
                self.meter.record_invalid(model, role)
                misses = misses + 1 if not_json else 0
                if not_json and client.cfg.provider != "simulated" and self.cache is not None:
                    # no JSON (or JSON outside the schema sent) from a real server: it ignored the schema, and
                    # replaying this answer on a resume could never help (the cache key does not change when the
                    # endpoint steps down to JSON mode): forgotten, like a reply without an answer
                    self.cache.delete(completion.key)
                    self.forgotten += 1
                if not_json and client.cfg.provider != "simulated":  # the simulator's defects are a model's slips
                    # A server that enforces json_schema never answers outside the schema it was sent. Outside it
                    # again after a re-ask, or a first answer outside it on a second call: this server accepts
                    # response_format and ignores it (the model never saw the schema); from now on the schema
                    # goes in the prompt.
                    client.schema_misses += attempt == 0
                    if misses >= 2 or client.schema_misses >= 2:
                        client.step_down(f"no JSON in the answer with json_schema: {err}", role)
                convo = [*base]
                if completion.text.strip():
                    convo.append({"role": "assistant", "content": completion.text[:REPAIR_ECHO_CHARS]})
                convo.append(
                    {"role": "user", "content": repair_prompt(str(err), completion.finish_reason == "length", schema)}
                )
                continue
            repairs += notes
            if repairs:
                self.meter.record_repaired(model, role)
            return StructuredResult(
                value=value, completion=completion, repairs=repairs, failures=failures, mode=client.structured_mode
            )
        self.meter.record_failure(model, role, "invalid_output")
        raise StructuredOutputError(
            f"{model}: no valid structured answer after {len(failures)} attempts; last error: {failures[-1].error}",
            failures=failures,
            endpoint=model,
        )

    # ------------------------------------------------------------------ lifecycle

    def stats(self) -> dict[str, Any]:
        return {name: client.stats() for name, client in self.endpoints.items()}

    async def aclose(self) -> None:
        try:
            for client in self.endpoints.values():
                await client.aclose()
        finally:  # the cache's queued answers are committed even when a client fails to close
            if self.cache is not None:
                self.cache.close()

    async def __aenter__(self) -> ModelRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
