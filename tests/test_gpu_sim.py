"""serve-sim's GPU capacity model: continuous batching, prefill and decode costs, the prefix cache, metrics.

The engine's behaviour follows vLLM's documented design: a running batch capped by ``max_num_seqs``
with a waiting queue (docs.vllm.ai, "Production Metrics": ``vllm:num_requests_running`` /
``vllm:num_requests_waiting``), and automatic prefix caching by chained block hashes with LRU
eviction (docs.vllm.ai, "Automatic Prefix Caching"). Tests drive the engine on their own clock.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from autodata.errors import ConfigError
from autodata.sim.gpu import PRESETS, GpuEngine, GpuSpec, PrefixCache, load_spec, metrics_text, prompt_text

# one step = 1 + 1 * running seconds; prefill 0.5 s a token; blocks of 1 token (4 characters)
SPEC = GpuSpec("t", max_batch=2, prefill_s_per_token=0.5, step_base_s=1.0, step_per_seq_s=1.0, cache_blocks=8,
               block_tokens=1)  # fmt: skip


def test_spec_arithmetic_and_presets():
    assert SPEC.step_s(2) == 3.0
    assert SPEC.peak_decode_tokens_per_s == pytest.approx(2 / 3)
    assert SPEC.work_s(prefill_tokens=4, decode_tokens=6) == pytest.approx(4 * 0.5 + 6 * 1.5)
    for spec in PRESETS.values():  # throughput grows with the batch: the point of batching
        assert spec.peak_decode_tokens_per_s > 1 / spec.step_s(1)
    big, small = PRESETS["llama-70b-8xh100"], PRESETS["llama-8b-1xh100"]
    assert big.prefill_s_per_token > 0 and small.cache_blocks < big.cache_blocks
    with pytest.raises(ConfigError) as err:
        GpuSpec("bad", max_batch=0, prefill_s_per_token=0, step_base_s=1, step_per_seq_s=0, cache_blocks=0)
    assert "max_batch: must be at least 1" in err.value.details


def test_load_spec_from_a_preset_or_a_file(tmp_path):
    assert load_spec("tiny") is PRESETS["tiny"]
    with pytest.raises(ConfigError, match="presets: llama-8b-1xh100"):
        load_spec("h200")
    f = tmp_path / "mine.yaml"
    f.write_text("base: llama-8b-1xh100\nmax_batch: 64\n")
    spec = load_spec(path=f)
    assert spec.max_batch == 64 and spec.step_base_s == PRESETS["llama-8b-1xh100"].step_base_s
    f.write_text("max_batch: 64\nbogus: 1\n")
    with pytest.raises(ConfigError, match="unknown keys bogus"):
        load_spec(path=f)
    f.write_text("max_batch: 64\n")
    with pytest.raises(ConfigError, match="missing keys"):
        load_spec(path=f)


async def test_one_request_costs_prefill_then_decode_steps():
    eng = GpuEngine(SPEC)
    done = eng.submit("abcdefgh", prompt_tokens=2, outputs=[3], now=0.0)
    eng.advance_to(0.99)  # prefill: 2 tokens x 0.5 s
    assert not done.done() and eng.running == 1
    eng.advance_to(1.0 + 3 * 2.0 - 0.01)  # 3 tokens at a step of 1 + 1 x 1 running
    assert not done.done()
    eng.advance_to(7.0)
    assert done.done()
    s = eng.snapshot(7.0)
    assert s["busy_s"] == pytest.approx(7.0) and s["busy_fraction"] == pytest.approx(1.0)
    # idle after the last answer: the span grows, the active stretch (first request to last answer) does not
    s = eng.snapshot(10.0)
    assert s["busy_fraction"] == pytest.approx(0.7) and s["active_s"] == pytest.approx(7.0)
    assert s["generation_tokens"] == 3 and s["prefill_tokens"] == 2 and s["running"] == 0


async def test_batching_queueing_and_steps_that_grow_with_the_batch():
    eng = GpuEngine(SPEC)
    futs = [eng.submit(f"{i}" * 4, prompt_tokens=0, outputs=[2], now=0.0) for i in range(3)]
    s = eng.snapshot(0.0)
    assert (s["running"], s["waiting"]) == (2, 1)  # max_batch 2: the third waits
    eng.advance_to(2 * 3.0 - 0.01)  # two tokens at a step of 1 + 1 x 2
    assert not any(f.done() for f in futs)
    eng.advance_to(6.0)
    assert futs[0].done() and futs[1].done() and not futs[2].done()
    assert eng.snapshot(6.0)["running"] == 1  # admitted as soon as the batch had room
    eng.advance_to(6.0 + 2 * 2.0)  # alone: a step of 1 + 1 x 1
    assert futs[2].done()
    assert eng.snapshot(10.0)["busy_s"] == pytest.approx(10.0)


async def test_parallel_samples_share_one_prefill_and_count_against_the_batch():
    eng = GpuEngine(SPEC)
    a = eng.submit("abcdefgh", prompt_tokens=2, outputs=[1, 2], now=0.0)  # n = 2: the whole batch
    b = eng.submit("zzzz", prompt_tokens=1, outputs=[2], now=0.0)
    assert eng.snapshot(0.0)["waiting"] == 1
    eng.advance_to(1.0 + 3.0)  # prefill once (1 s), then a step of 1 + 1 x 2
    assert not a.done() and eng.snapshot(4.0)["waiting"] == 0  # one sequence done: b admitted
    eng.advance_to(4.0 + 0.5 + 3.0)  # b's prefill stalls the batch, then a step of 1 + 1 x 2
    assert a.done() and not b.done()
    assert eng.snapshot(7.5)["prefill_tokens"] == 3


async def test_prefix_cache_hits_skip_prefill_and_the_lru_evicts():
    eng = GpuEngine(SPEC)
    eng.submit("AAAABBBBCCCC", prompt_tokens=3, outputs=[0], now=0.0)
    eng.advance_to(10.0)
    eng.submit("AAAABBBBDDDD", prompt_tokens=3, outputs=[0], now=10.0)  # shares two blocks
    eng.advance_to(20.0)
    s = eng.snapshot(20.0)
    assert (s["prefix_queries"], s["prefix_hits"], s["prefill_tokens"]) == (6, 2, 4)
    eng.submit("XXXXBBBBCCCC", prompt_tokens=3, outputs=[0], now=20.0)  # same blocks, other prefix: no hit
    eng.advance_to(30.0)
    assert eng.snapshot(30.0)["prefix_hits"] == 2

    cache = PrefixCache(capacity_blocks=2, block_tokens=1)
    one, two, three = (cache.block_hashes(t) for t in ("aaaa", "bbbb", "cccc"))
    cache.insert(one)
    cache.insert(two)
    assert cache.hit_blocks(one) == 1  # touched: now the most recently used
    cache.insert(three)
    assert (cache.hit_blocks(one), cache.hit_blocks(two), cache.hit_blocks(three), len(cache)) == (1, 0, 1, 2)
    assert cache.block_hashes("abc") == []  # a partial block is never cached


def test_prompt_text_lays_out_roles_and_parts():
    assert prompt_text([{"role": "system", "content": "s"}, {"role": "user", "content": [{"text": "u"}]}]) == (
        "<|system|>s<|user|>u"
    )


async def test_engine_on_the_event_loop_clock_and_its_metrics():
    eng = GpuEngine(PRESETS["tiny"], time_scale=0.001)  # a simulated second takes 1 ms
    await eng.generate("hello " * 20, 30, [5])
    text = metrics_text(eng, "m")
    names = ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:prefix_cache_hits_total"]
    names += ["vllm:prefix_cache_queries_total", "vllm:generation_tokens_total", "serve_sim:busy_fraction"]
    for name in names:
        assert f'{name}{{model_name="m"}}' in text
    assert 'vllm:generation_tokens_total{model_name="m"} 5.0' in text
    eng.close()


def test_serve_sim_with_a_gpu_model_answers_as_without_and_serves_metrics():
    from autodata.sim.ladder import SimulatedLadder
    from conftest import autodata_server, wait_until_answering

    body = {"model": "sim-weak", "messages": [{"role": "user", "content": "What is 2 + 2? Explain."}], "seed": 3}
    with autodata_server(
        "serve-sim", "--port", "0", "--seed", "0", "--gpu-model", "tiny", "--time-scale", "0.01"
    ) as line:
        assert "GPU model tiny" in line, line
        base = line.split(" on ")[1].split()[0].rsplit("/v1", 1)[0]
        wait_until_answering(base + "/health", "serve-sim")
        req = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(),
                                     {"content-type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as r:
            got = json.loads(r.read())
        with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
            metrics = r.read().decode()
    status, want = SimulatedLadder(global_seed=0).respond(body)
    assert status == 200 and got == want  # the engine decides when, never what
    assert "vllm:request_success_total" in metrics and "serve_sim:work_seconds_total" in metrics
