"""The runtime on the in-process simulated ladder: caching, seeds, samples, usage and cost."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from autodata.config import validate_config
from autodata.llm.cache import CallCache
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import ResponseSchema, StructuredOutputError, derive_seed

MSG = [{"role": "user", "content": "Explain why indentation consistency matters in Python codebases."}]


def _cfg(**ep):
    base = {"provider": "simulated", "model": "sim-weak", "price": {"input_per_mtok": 1.0, "output_per_mtok": 4.0}}
    return validate_config(
        {"seed": 0, "models": {"weak": {**base, **ep}, "strong": {"provider": "simulated", "model": "sim-strong"}}}
    )


@pytest.fixture
def cache(tmp_path):
    c = CallCache(tmp_path / "calls.sqlite")
    yield c
    c.close()


async def test_identical_requests_hit_and_rerun_makes_zero_calls(cache):
    rt = ModelRuntime(_cfg(), cache=cache)
    first = [await rt.complete("weak", MSG, sample=i) for i in range(3)]
    assert rt.meter.totals.calls == 3 and rt.meter.totals.cache_hits == 0
    rt2 = ModelRuntime(_cfg(), cache=cache)
    again = [await rt2.complete("weak", MSG, sample=i) for i in range(3)]
    assert rt2.meter.totals.calls == 0 and rt2.meter.totals.cache_hits == 3
    assert [c.text for c in again] == [c.text for c in first]
    assert all(c.cached for c in again)


@pytest.mark.parametrize(
    "change",
    ["model", "messages", "temperature", "max_tokens", "schema", "extra_body", "sample", "seed"],
)
async def test_any_change_in_the_request_misses(cache, change):
    rt = ModelRuntime(_cfg(), cache=cache)
    schema = ResponseSchema("A", {"type": "object", "properties": {"x": {"type": "integer"}}})
    base = {"model": "weak", "messages": MSG, "sample": 0, "params": {"temperature": 0.7, "max_tokens": 100}}
    req = rt.request(base["model"], base["messages"], sample=0, params=base["params"])
    key = req.cache_key()
    if change == "model":
        other = rt.request("strong", MSG, sample=0, params=base["params"])
    elif change == "messages":
        other = rt.request(
            "weak", [{"role": "user", "content": "Explain why indentation matters."}], params=base["params"]
        )
    elif change == "temperature":
        other = rt.request("weak", MSG, params={"temperature": 0.8, "max_tokens": 100})
    elif change == "max_tokens":
        other = rt.request("weak", MSG, params={"temperature": 0.7, "max_tokens": 101})
    elif change == "schema":
        other = rt.request("weak", MSG, params=base["params"], schema=schema)
    elif change == "extra_body":
        rt2 = ModelRuntime(_cfg(extra_body={"chat_template_kwargs": {"enable_thinking": False}}), cache=None)
        other = rt2.request("weak", MSG, params=base["params"])
    elif change == "sample":
        other = rt.request("weak", MSG, sample=1, params=base["params"])
    else:
        rt3 = ModelRuntime(
            validate_config({"seed": 1, "models": {"weak": {"provider": "simulated", "model": "sim-weak"}}}), cache=None
        )
        other = rt3.request("weak", MSG, params=base["params"])
    assert other.cache_key() != key


def _key(**ep: object) -> str:
    cfg = validate_config({"models": {"w": {"provider": "openai", "model": "m", **ep}}})
    return ModelRuntime(cfg, backends={"w": []}).request("w", MSG).cache_key()


async def test_key_tells_servers_apart_but_not_keys_or_replica_order():
    """Issue 12: llama-server and vLLM ``--served-model-name`` both answering as ``local`` must not share
    answers; replicas of one endpoint (any order, any key, any pacing) still do."""
    replicas = _key(base_url=["http://b:2/v1", "http://c:3/v1"], api_key_env="KEY_A")
    assert replicas == _key(
        base_url=["http://c:3/v1", "http://b:2/v1"], api_key_env="KEY_B", max_concurrency=3, timeout_s=9
    )
    assert _key(base_url="http://a:1/v1") != _key(base_url="http://b:2/v1")
    assert _key(base_url="http://b:2/v1") != replicas
    # the provider's default URL keeps the key earlier versions wrote
    assert _key() == _key(api_key_env="K")


async def test_samples_have_derived_seeds_and_differ():
    rt = ModelRuntime(_cfg(), cache=None)
    results = await rt.complete_n("weak", MSG, 4)
    seeds = [c.seed for c in results]
    assert seeds == [derive_seed(0, i) for i in range(4)]
    assert len(set(seeds)) == 4
    assert len({c.text for c in results}) == 4  # different seeds give different samples
    again = await ModelRuntime(_cfg(), cache=None).complete_n("weak", MSG, 4)
    assert [c.text for c in again] == [c.text for c in results]  # and are reproducible


async def test_temperature_zero_ignores_seed():
    rt = ModelRuntime(_cfg(sampling={"temperature": 0}), cache=None)
    results = await rt.complete_n("weak", MSG, 3)
    assert len({c.text for c in results}) == 1


async def test_identical_concurrent_calls_are_deduplicated():
    rt = ModelRuntime(_cfg(simulation={"latency_ms": 20}), cache=None)
    results = await asyncio.gather(*(rt.complete("weak", MSG) for _ in range(10)))
    assert rt.meter.totals.calls == 1
    assert rt.deduplicated == 9
    assert len({r.text for r in results}) == 1


async def test_usage_and_cost_by_endpoint_and_role():
    rt = ModelRuntime(_cfg(), cache=None)
    a = await rt.complete("weak", MSG, role="weak_solver")
    b = await rt.complete("strong", MSG, role="strong_solver")
    c = await rt.complete("weak", MSG, role="judge", sample=1)
    by_role = rt.meter.by_role()
    by_ep = rt.meter.by_endpoint()
    assert by_role["weak_solver"].calls == 1 and by_role["judge"].calls == 1
    assert by_ep["weak"].calls == 2 and by_ep["strong"].calls == 1
    expected = (
        (a.usage.input_tokens + c.usage.input_tokens) * 1.0 + (a.usage.output_tokens + c.usage.output_tokens) * 4.0
    ) / 1e6
    assert by_ep["weak"].cost_usd == pytest.approx(expected)
    assert by_ep["strong"].cost_usd == 0.0  # no price configured
    assert rt.meter.totals.input_tokens == a.usage.input_tokens + b.usage.input_tokens + c.usage.input_tokens
    assert a.usage.input_tokens > 10 and a.usage.output_tokens > 10


async def test_cache_hits_cost_nothing_but_report_savings(cache):
    rt = ModelRuntime(_cfg(), cache=cache)
    await rt.complete("weak", MSG)
    spent = rt.meter.totals.cost_usd
    rt2 = ModelRuntime(_cfg(), cache=cache)
    await rt2.complete("weak", MSG)
    assert rt2.meter.totals.cost_usd == 0.0
    assert rt2.meter.totals.saved_usd == pytest.approx(spent)


class Quiz(BaseModel):
    question: str
    answer: str
    difficulty: int


async def test_structured_with_every_answer_faulty_is_repaired_or_reasked():
    """fault_rate=1: every first answer is defective; each result is valid or an explicit error."""
    rt = ModelRuntime(_cfg(simulation={"fault_rate": 1.0}, max_repairs=3), cache=None)
    outcomes = await asyncio.gather(
        *(
            rt.structured("weak", [{"role": "user", "content": f"Quiz question number {i} about PEP 8"}], Quiz)
            for i in range(40)
        ),
        return_exceptions=True,
    )
    ok = [o for o in outcomes if not isinstance(o, BaseException)]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, StructuredOutputError) for e in errors)
    assert all(isinstance(o.value, Quiz) for o in ok)
    # each success either needed a recorded repair or came after recorded invalid answers
    assert all(o.repairs or o.failures for o in ok)
    t = rt.meter.totals
    assert t.repaired_outputs == sum(1 for o in ok if o.repairs)
    assert t.invalid_outputs == sum(len(o.failures) for o in ok) + sum(len(e.failures) for e in errors)
    assert len(ok) >= 30  # re-asks recover most


async def test_structured_failure_carries_every_attempt():
    rt = ModelRuntime(_cfg(simulation={"fault_rate": 1.0}, max_repairs=0), cache=None)
    failures = 0
    for i in range(30):
        try:
            await rt.structured("weak", [{"role": "user", "content": f"Quiz {i}"}], Quiz)
        except StructuredOutputError as exc:
            failures += 1
            assert len(exc.failures) == 1
            assert exc.kind == "invalid_output"
            assert exc.failures[0].error
    assert failures > 0
    assert rt.meter.totals.failures == failures


async def test_structured_clean_answers_need_no_repair():
    rt = ModelRuntime(_cfg(simulation={"fault_rate": 0.0}), cache=None)
    res = await rt.structured("weak", MSG, Quiz)
    assert isinstance(res.value, Quiz) and res.repairs == [] and res.failures == []
    assert res.mode == "json_schema"


async def test_unknown_model_name_is_a_user_error():
    from autodata.errors import ConfigError

    rt = ModelRuntime(_cfg(), cache=None)
    with pytest.raises(ConfigError, match="unknown model 'judge'; defined models: strong, weak"):
        await rt.complete("judge", MSG)


async def test_missing_api_key_env_is_reported(monkeypatch):
    from autodata.errors import ConfigError

    monkeypatch.delenv("NOPE_KEY", raising=False)
    cfg = validate_config(
        {
            "models": {
                "w": {
                    "provider": "openai",
                    "model": "m",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key_env": "NOPE_KEY",
                }
            }
        }
    )
    rt = ModelRuntime(cfg, cache=None)
    with pytest.raises(ConfigError) as info:
        await rt.complete("w", MSG)
    assert "models.w.api_key_env: environment variable NOPE_KEY is not set" in info.value.render()


async def test_simulator_version_is_part_of_simulated_keys_only(monkeypatch):
    import autodata.sim.provider as runtime_mod  # the provider puts the simulator's version in the namespace

    before = ModelRuntime(_cfg(), cache=None).request("weak", MSG).cache_key()
    monkeypatch.setattr(runtime_mod, "SIM_VERSION", "sim-next")
    after = ModelRuntime(_cfg(), cache=None).request("weak", MSG).cache_key()
    assert after != before  # a new simulator does not replay old answers
    faulty = ModelRuntime(_cfg(simulation={"fault_rate": 1.0}), cache=None).request("weak", MSG).cache_key()
    assert faulty != after  # nor do answers made at another fault rate
    real = validate_config({"models": {"w": {"provider": "openai", "model": "m", "base_url": "http://a:1/v1"}}})
    key = ModelRuntime(real, backends={"w": []}).request("w", MSG).cache_key()
    monkeypatch.setattr(runtime_mod, "SIM_VERSION", "sim-other")
    assert ModelRuntime(real, backends={"w": []}).request("w", MSG).cache_key() == key
