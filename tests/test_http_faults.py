"""The real HTTP path under fire: ModelRuntime -> EndpointClient -> OpenAIBackend -> ``openai``.

Every test talks to :mod:`faultserver` (an OpenAI-compatible server on 127.0.0.1 that injects
429s, 5xx, connection resets, slow answers and broken bodies on a programmed plan) and checks
numbers: how many requests the server saw, how many retries the meter counted, which error kind
a final failure carries, and that a fault never changes an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from autodata.config import validate_config
from autodata.llm.cache import CallCache
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError, Completion
from autodata.sim.ladder import SimulatedLadder
from faultserver import (
    ABORT,
    MALFORMED,
    Arrival,
    Fault,
    FaultServer,
    closed_port,
    rate_limited,
    slow,
    status,
)

pytestmark = pytest.mark.timeout(60)

NAME = "m"


@pytest.fixture(autouse=True)
def _no_proxies(no_proxies):
    """tests/conftest.py's ``no_proxies`` for every test here."""


@pytest.fixture
async def servers():
    """Factory: start fault servers on the test's loop; all are stopped at teardown."""
    started: list[FaultServer] = []

    async def make(plan: Any = None, latency: float = 0.0) -> FaultServer:
        srv = await FaultServer(plan=plan, latency=latency).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        await srv.stop()


@pytest.fixture
async def runtimes(servers):
    """Factory: a ModelRuntime for one endpoint ``m``; closed before the servers stop."""
    made: list[ModelRuntime] = []

    def make(urls: str | list[str], cache: CallCache | None = None, **endpoint: Any) -> ModelRuntime:
        ep: dict[str, Any] = {
            "provider": "openai",
            "model": "sim-weak",
            "base_url": urls,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.2,
            "timeout_s": 10.0,
            "max_retries": 6,
            "max_concurrency": 8,
        }
        ep.update(endpoint)
        rt = ModelRuntime(validate_config({"seed": 0, "models": {NAME: ep}}), cache=cache)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        await rt.aclose()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def prompts(tag: str, n: int) -> list[str]:
    return [f"{tag} prompt {i}: explain how harbour tides influence mooring schedules" for i in range(n)]


async def run_all(rt: ModelRuntime, texts: list[str]) -> list[Completion]:
    return list(await asyncio.gather(*(rt.complete(NAME, user(t), role="test") for t in texts)))


def ladder_text(body: dict[str, Any]) -> str:
    """What the simulator answers for this exact wire body, asked directly (no HTTP, no faults)."""
    code, payload = SimulatedLadder(global_seed=0, fault_rate=0.0).respond(body)
    assert code == 200
    return payload["choices"][0]["message"]["content"]


def first_time(fault: Fault):
    """Plan: ``fault`` the first time a given conversation arrives, a normal answer afterwards."""
    return lambda a: fault if a.content_index == 0 else None


# ------------------------------------------------------------------------------------ the server itself


async def test_server_lists_models_and_keeps_connections_alive(servers, runtimes):
    srv = await servers()
    rt = runtimes(srv.url)
    backend = rt.endpoint(NAME).pool.replicas[0].backend
    page = await backend.client.models.list()
    assert "sim-weak" in {m.id for m in page.data}
    for t in prompts("keepalive", 10):
        done = await rt.complete(NAME, user(t), role="test")
        assert done.text.startswith("[simulated sim-weak]")
    assert srv.count == 11
    assert [r.status for r in srv.records] == [200] * 11
    assert srv.connections_opened == 1  # eleven sequential requests over one keep-alive connection


# ------------------------------------------------------------------------------------ 1. 429 + Retry-After


async def test_429_storm_with_retry_after_waits_as_told(servers, runtimes):
    srv = await servers(plan=[rate_limited(0.3)] * 3)
    rt = runtimes(srv.url)
    texts = prompts("retry-after", 5)
    out = await run_all(rt, texts)

    assert [c.text.startswith("[simulated sim-weak]") for c in out] == [True] * 5
    assert srv.count == 8  # 5 first tries + 3 retries
    assert srv.faults() == Counter({"429+retry-after": 3, "ok": 5})
    limited = [r for r in srv.records if r.status == 429]
    assert [r.index for r in limited] == [0, 1, 2]
    for r in limited:
        after = [x for x in srv.records if x.key == r.key and x.index > r.index]
        assert len(after) == 1 and after[0].status == 200
        assert r.t_end is not None
        gap = after[0].t_start - r.t_end
        assert gap >= 0.3 - 0.005, f"retried {gap:.3f}s after a 429 with Retry-After: 0.3"
        assert gap < 3.0
    totals = rt.meter.totals
    assert totals.retries == 3
    assert totals.errors == {"rate_limited": 3}
    assert totals.calls == 5 and totals.failures == 0
    assert sorted(c.attempts for c in out) == [1, 1, 2, 2, 2]


# ------------------------------------------------------------------------------------ 2. 429 without it


async def test_429_storm_without_retry_after_shrinks_then_regrows_window(servers, runtimes):
    storm = 12
    plan = lambda a: rate_limited(None, delay=0.02) if a.index < storm else None  # noqa: E731
    srv = await servers(plan=plan, latency=0.02)
    rt = runtimes(srv.url, max_concurrency=8)
    window = rt.endpoint(NAME).window

    out = await run_all(rt, prompts("storm", 40))
    assert len(out) == 40 and all(c.text for c in out)
    assert srv.count == 40 + storm
    assert Counter(r.status for r in srv.records) == Counter({200: 40, 429: storm})
    assert rt.meter.totals.retries == storm
    assert rt.meter.totals.errors == {"rate_limited": storm}
    assert window.shrinks >= 1
    assert 1 <= window.low_water < 8
    assert window.limit > window.low_water  # successes after the storm grew it again
    assert 2 <= srv.peak_in_flight <= 8  # the server never saw more than max_concurrency at once
    assert window.peak_in_flight <= 8

    # a long enough run of successes brings the window back to its maximum
    peak_before = srv.peak_in_flight
    out = await run_all(rt, prompts("recovery", 60))
    assert len(out) == 60 and srv.count == 40 + storm + 60
    assert window.limit == 8.0
    assert max(peak_before, srv.peak_in_flight) <= 8
    assert rt.meter.totals.retries == storm


# ------------------------------------------------------------------------------------ 3. 500 / 503


async def test_500_and_503_are_retried_until_success(servers, runtimes):
    def plan(a: Arrival) -> Fault | None:
        return {0: status(500, "upstream exploded"), 1: status(503, "warming up")}.get(a.content_index)

    srv = await servers(plan=plan)
    rt = runtimes(srv.url)
    out = await run_all(rt, prompts("fivexx", 4))
    assert [c.attempts for c in out] == [3, 3, 3, 3]
    assert srv.count == 12
    assert Counter(r.status for r in srv.records) == Counter({500: 4, 503: 4, 200: 4})
    assert rt.meter.totals.retries == 8
    assert rt.meter.totals.errors == {"server_error": 4, "overloaded": 4}
    assert rt.meter.totals.failures == 0


async def test_persistent_500_gives_up_after_max_retries(servers, runtimes):
    srv = await servers(plan=lambda a: status(500, "the GPU caught fire"))
    rt = runtimes(srv.url, max_retries=2)
    with pytest.raises(CallError) as info:
        await rt.complete(NAME, user("always failing"), role="test")
    err = info.value
    assert err.kind == "server_error"
    assert err.status == 500
    assert err.attempts == 3
    assert err.retryable is True
    assert "the GPU caught fire" in str(err)
    assert "gave up after 3 attempts" in str(err)
    assert srv.count == 3
    assert rt.meter.totals.retries == 2
    assert rt.meter.totals.failures == 1
    assert rt.meter.totals.errors == {"server_error": 3}


# ------------------------------------------------------------------------------------ 4. reset


@pytest.mark.parametrize("transport", ["aiohttp", "httpx", "direct"])
async def test_connection_reset_is_retried(servers, runtimes, transport):
    srv = await servers(plan=first_time(ABORT))
    rt = runtimes(srv.url, http_transport=transport)
    texts = prompts("reset", 6)
    out = await run_all(rt, texts)
    assert [c.attempts for c in out] == [2] * 6
    assert srv.count == 12
    assert srv.faults() == Counter({"abort": 6, "ok": 6})
    assert rt.meter.totals.errors == {"connection": 6}
    assert rt.meter.totals.retries == 6
    # the retried answers are exactly what the simulator gives for those bodies
    answered = {r.prompt: ladder_text(r.body) for r in srv.records if r.ok}
    assert [c.text for c in out] == [answered[t] for t in texts]


# ------------------------------------------------------------------------------------ 5. timeout


@pytest.mark.parametrize("transport", ["aiohttp", "httpx", "direct"])
async def test_slow_answer_times_out_and_is_retried(servers, runtimes, transport):
    srv = await servers(plan=first_time(slow(3.0)))
    rt = runtimes(srv.url, timeout_s=0.3, http_transport=transport)
    started = time.monotonic()
    out = await run_all(rt, prompts("slow", 4))
    elapsed = time.monotonic() - started
    assert [c.attempts for c in out] == [2] * 4
    assert srv.count == 8
    assert srv.faults() == Counter({"slow": 4, "ok": 4})
    assert rt.meter.totals.errors == {"timeout": 4}
    assert 0.29 <= elapsed < 2.5  # waited for the timeout, not for the slow answer


@pytest.mark.parametrize("transport", ["aiohttp", "httpx", "direct"])
async def test_always_slow_fails_with_timeout_after_all_attempts(servers, runtimes, transport):
    srv = await servers(plan=lambda a: slow(2.0))
    rt = runtimes(srv.url, timeout_s=0.25, max_retries=2, http_transport=transport)
    started = time.monotonic()
    with pytest.raises(CallError) as info:
        await rt.complete(NAME, user("never in time"), role="test")
    elapsed = time.monotonic() - started
    assert info.value.kind == "timeout"
    assert info.value.attempts == 3
    assert srv.count == 3
    assert rt.meter.totals.errors == {"timeout": 3}
    assert 3 * 0.25 - 0.02 <= elapsed < 5.0


# ------------------------------------------------------------------------------------ 6. broken body


@pytest.mark.parametrize("transport", ["aiohttp", "httpx", "direct"])
async def test_malformed_200_body_is_retried(servers, runtimes, transport):
    srv = await servers(plan=first_time(MALFORMED))
    rt = runtimes(srv.url, http_transport=transport)
    texts = prompts("malformed", 4)
    out = await run_all(rt, texts)
    assert [c.attempts for c in out] == [2] * 4
    assert srv.count == 8
    assert Counter(r.fault for r in srv.records) == Counter({"malformed": 4, "ok": 4})
    assert all(r.status == 200 for r in srv.records)
    assert rt.meter.totals.errors == {"malformed_response": 4}
    by_prompt = {r.prompt: r for r in srv.records if r.ok}
    for t, c in zip(texts, out, strict=True):
        assert c.text == ladder_text(by_prompt[t].body)


# ------------------------------------------------------------------------------------ 7. no-retry errors


async def test_prompt_beyond_context_window_fails_at_once(servers, runtimes):
    srv = await servers()
    rt = runtimes(srv.url)
    huge = "lighthouse " * 8000  # ~22k tokens by the 4-chars rule; sim-weak has 16384
    with pytest.raises(CallError) as info:
        await rt.complete(NAME, user(huge), role="test")
    err = info.value
    assert err.kind == "context_too_long"
    assert err.status == 400
    assert err.attempts == 1
    assert err.retryable is False
    assert "maximum context length is 16384 tokens" in str(err)
    assert srv.count == 1
    assert rt.meter.totals.retries == 0
    assert rt.meter.totals.errors == {"context_too_long": 1}


VLLM_CONTEXT = (
    "This model's maximum context length is 4096 tokens. However, you requested 5120 tokens "
    "(4096 in the messages, 1024 in the completion). Please reduce the length of the messages or completion."
)


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (400, VLLM_CONTEXT, "context_too_long"),
        (401, "Incorrect API key provided: sk-test", "auth"),
        (403, "this key may not use this model", "auth"),
        (404, "The model `sim-weak` does not exist", "not_found"),
        (400, "temperature must be between 0 and 2", "bad_request"),
    ],
)
async def test_client_errors_are_not_retried(servers, runtimes, code, message, kind):
    srv = await servers(plan=lambda a: status(code, message))
    rt = runtimes(srv.url)
    with pytest.raises(CallError) as info:
        await rt.complete(NAME, user("one shot"), role="test")
    err = info.value
    assert (err.kind, err.status, err.attempts, err.retryable) == (kind, code, 1, False)
    assert message in str(err)
    assert srv.count == 1
    assert rt.meter.totals.retries == 0
    assert rt.meter.totals.failures == 1


# ------------------------------------------------------------------------------------ 8. dead replica


async def test_dead_replica_is_rested_and_live_one_serves_everything(servers, runtimes):
    srv = await servers(latency=0.02)
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    rt = runtimes([dead, srv.url], max_concurrency=4)
    n = 20
    out = await run_all(rt, prompts("replicas", n))
    assert len(out) == n and all(c.text for c in out)
    pool = rt.endpoint(NAME).pool
    down, live = pool.replicas
    assert down.label == dead and live.label == srv.url
    assert down.times_rested >= 1
    assert down.served == 0
    assert live.served == n
    assert srv.count == n and all(r.ok for r in srv.records)
    totals = rt.meter.totals
    assert totals.retries >= pool.fail_threshold
    assert totals.errors == {"connection": totals.retries}
    assert sum(c.attempts - 1 for c in out) == totals.retries
    assert max(c.attempts for c in out) == 2  # no request failed more than once


# ------------------------------------------------------------------------------------ 9. balancing


async def test_fewest_in_flight_spreads_load_over_two_replicas(servers, runtimes):
    a = await servers(latency=0.02)
    b = await servers(latency=0.02)
    rt = runtimes([a.url, b.url], max_concurrency=8)
    n = 60
    out = await run_all(rt, prompts("balance", n))
    assert len(out) == n
    assert a.count + b.count == n
    assert 0.35 * n <= a.count <= 0.65 * n, (a.count, b.count)
    assert 0.35 * n <= b.count <= 0.65 * n, (a.count, b.count)
    assert [r.served for r in rt.endpoint(NAME).pool.replicas] == [a.count, b.count]
    assert a.peak_in_flight + b.peak_in_flight <= 2 * 8
    assert max(a.peak_in_flight, b.peak_in_flight) <= 8


# ------------------------------------------------------------------------------------ 10. answers unchanged


MIX = [rate_limited(None), status(500, "flaky"), ABORT, slow(1.0), None]


async def test_faults_never_change_or_duplicate_answers(servers, runtimes):
    texts = prompts("mixed", 50)
    index = {t: i for i, t in enumerate(texts)}

    def plan(a: Arrival) -> Fault | None:
        return MIX[index[a.prompt] % len(MIX)] if a.content_index == 0 else None

    clean_srv = await servers()
    clean_rt = runtimes(clean_srv.url, max_concurrency=16)
    clean = await run_all(clean_rt, texts)
    assert clean_srv.count == 50

    srv = await servers(plan=plan)
    rt = runtimes(srv.url, max_concurrency=16, min_concurrency=4, timeout_s=0.3)
    started = time.monotonic()
    out = await run_all(rt, texts)
    assert time.monotonic() - started < 10

    assert len(out) == 50
    assert [c.text for c in out] == [c.text for c in clean]
    assert [c.usage for c in out] == [c.usage for c in clean]
    expected_attempts = [1 if MIX[i % 5] is None else 2 for i in range(50)]
    assert [c.attempts for c in out] == expected_attempts
    # the server answered every prompt normally exactly once
    answered = Counter(r.prompt for r in srv.records if r.ok)
    assert answered == Counter(texts)
    assert srv.count == 50 + 40
    assert srv.faults() == Counter({"429": 10, "500": 10, "abort": 10, "slow": 10, "ok": 50})
    totals = rt.meter.totals
    assert totals.errors == {"rate_limited": 10, "server_error": 10, "connection": 10, "timeout": 10}
    assert totals.retries == 40 and totals.calls == 50 and totals.failures == 0
    # and each answer is exactly what the simulator gives for that body asked directly
    for r in srv.records:
        if r.ok:
            assert out[index[r.prompt]].text == ladder_text(r.body)


# ------------------------------------------------------------------------------------ 11. structured


class Finding(BaseModel):
    title: str
    score: int
    tags: list[str]


def reject_json_schema(a: Arrival) -> Fault | None:
    rf = a.body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return status(400, "response_format json_schema is not supported by this server")
    return None


def reject_any_response_format(a: Arrival) -> Fault | None:
    rf = a.body.get("response_format")
    if rf is not None:
        return status(400, f"response_format of type {rf.get('type')} is not supported")
    return None


async def test_structured_falls_back_to_json_object(servers, runtimes):
    srv = await servers(plan=reject_json_schema)
    rt = runtimes(srv.url)
    res = await rt.structured(NAME, user("Summarise the lighthouse keeper's logbook"), output=Finding, role="test")
    ep = rt.endpoint(NAME)
    assert isinstance(res.value, Finding)
    assert res.mode == "json_object" and ep.structured_mode == "json_object"
    assert len(ep.mode_fallbacks) == 1 and ep.mode_fallbacks[0].startswith("json_schema -> json_object")
    assert [r.status for r in srv.records] == [400, 200]
    assert srv.records[0].body["response_format"]["type"] == "json_schema"
    assert srv.records[1].body["response_format"] == {"type": "json_object"}
    assert '("Finding")' in srv.records[1].body["messages"][-1]["content"]
    assert rt.meter.totals.retries == 0 and rt.meter.totals.failures == 0
    assert rt.meter.totals.invalid_outputs == 0

    # later calls go straight to the spelling that works
    res2 = await rt.structured(NAME, user("Summarise the harbour master's ledger"), output=Finding, role="test")
    assert isinstance(res2.value, Finding)
    assert [r.status for r in srv.records] == [400, 200, 200]


async def test_structured_falls_back_to_text_mode(servers, runtimes):
    srv = await servers(plan=reject_any_response_format)
    rt = runtimes(srv.url)
    res = await rt.structured(NAME, user("Summarise the lighthouse keeper's logbook"), output=Finding, role="test")
    ep = rt.endpoint(NAME)
    assert isinstance(res.value, Finding)
    assert res.mode == "text" and ep.structured_mode == "text"
    assert [r.status for r in srv.records] == [400, 400, 200]
    assert "response_format" not in srv.records[2].body
    assert "must satisfy this JSON Schema" in srv.records[2].body["messages"][-1]["content"]
    assert len(ep.mode_fallbacks) == 2
    assert res.completion.text == ladder_text(srv.records[2].body)


async def test_structured_fallback_under_concurrency(servers, runtimes):
    """Several calls rejected for json_schema at once must step down ONE mode, not one mode each."""
    srv = await servers(plan=reject_json_schema, latency=0.02)
    rt = runtimes(srv.url, max_concurrency=8)
    texts = prompts("structured", 6)
    results = await asyncio.gather(
        *(rt.structured(NAME, user(t), output=Finding, role="test") for t in texts), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert rt.endpoint(NAME).structured_mode == "json_object"
    assert Counter(r.status for r in srv.records) == Counter({400: 6, 200: 6})


# ------------------------------------------------------------------------------------ 12. cache


async def test_cache_answers_a_rerun_without_http(servers, runtimes, tmp_path):
    srv = await servers()
    path = tmp_path / "c.sqlite"
    texts = prompts("cached", 20)

    rt = runtimes(srv.url, cache=CallCache(path))
    first = await run_all(rt, texts)
    assert srv.count == 20 and not any(c.cached for c in first)
    again = await run_all(rt, texts)
    assert srv.count == 20  # zero HTTP requests
    assert all(c.cached for c in again)
    assert [c.text for c in again] == [c.text for c in first]
    assert rt.meter.totals.cache_hits == 20 and rt.meter.totals.calls == 20
    await rt.aclose()

    # a new process (new runtime, same file) gets the same answers, still without HTTP
    rt2 = runtimes(srv.url, cache=CallCache(path))
    third = await run_all(rt2, texts)
    assert srv.count == 20
    assert all(c.cached for c in third)
    assert [c.text for c in third] == [c.text for c in first]
    assert rt2.meter.totals.calls == 0 and rt2.meter.totals.cache_hits == 20
    await rt2.aclose()


async def test_failures_are_not_cached(servers, runtimes, tmp_path):
    srv = await servers(plan=[status(401, "bad key")])
    rt = runtimes(srv.url, cache=CallCache(tmp_path / "c.sqlite"))
    with pytest.raises(CallError):
        await rt.complete(NAME, user("first fails, then works"), role="test")
    done = await rt.complete(NAME, user("first fails, then works"), role="test")
    assert done.cached is False and srv.count == 2
    hit = await rt.complete(NAME, user("first fails, then works"), role="test")
    assert hit.cached is True and srv.count == 2
    await rt.aclose()


# ------------------------------------------------------------------------------------ 13. dedup


async def test_identical_concurrent_calls_share_one_request(servers, runtimes):
    srv = await servers(latency=0.05)
    rt = runtimes(srv.url)
    out = await asyncio.gather(*(rt.complete(NAME, user("the same question"), role="test") for _ in range(10)))
    assert srv.count == 1
    assert rt.deduplicated == 9
    assert sorted(c.cached for c in out) == [False] + [True] * 9
    assert len({c.text for c in out}) == 1
    assert rt.meter.totals.calls == 1 and rt.meter.totals.cache_hits == 9


async def test_identical_concurrent_calls_share_one_failure(servers, runtimes):
    srv = await servers(plan=lambda a: status(401, "bad key", delay=0.05))
    rt = runtimes(srv.url)
    out = await asyncio.gather(
        *(rt.complete(NAME, user("the same question"), role="test") for _ in range(10)), return_exceptions=True
    )
    assert srv.count == 1
    assert all(isinstance(e, CallError) and e.kind == "auth" for e in out)


async def test_cancelling_one_caller_does_not_cancel_identical_calls(servers, runtimes):
    srv = await servers(latency=0.3)
    rt = runtimes(srv.url)
    leader = asyncio.create_task(rt.complete(NAME, user("the same question"), role="test"))
    await asyncio.sleep(0)  # the leader registers the shared flight
    followers = [asyncio.create_task(rt.complete(NAME, user("the same question"), role="test")) for _ in range(3)]
    await asyncio.sleep(0.05)
    leader.cancel()
    out = await asyncio.gather(*followers, return_exceptions=True)
    assert leader.cancelled()
    assert [type(r).__name__ for r in out] == ["Completion"] * 3
    assert len({r.text for r in out}) == 1
    assert srv.count <= 2  # the cancelled request (if it got out) and one re-ask shared by the rest
    assert rt.deduplicated == 2
