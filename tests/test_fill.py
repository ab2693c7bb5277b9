"""Keeping the servers busy: admission by budget (``loop.concurrency: auto``), attempts and their judge
calls overlapping, and the k samples of a prompt as one ``n`` request where the server takes it.

``n`` > 1 follows the OpenAI chat-completions API ("n: how many chat completion choices to generate
for each input message"), which vLLM's and SGLang's OpenAI-compatible servers implement (vLLM:
docs.vllm.ai, "OpenAI-Compatible Server", sampling parameters; one prefill is shared by the n
sequences of a request, as the simulated GPU model in ``test_gpu_sim.py`` charges it).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from autodata.config import validate_config
from autodata.llm.backends import Reply
from autodata.llm.cache import CallCache
from autodata.llm.runtime import ModelRuntime
from autodata.loop.executor import LocalExecutor
from autodata.loop.run import documents_in_flight, run, settings_from
from autodata.sim.ladder import SimulatedLadder
from conftest import ladder_models, ladder_roles

ROOT = Path(__file__).resolve().parents[1]
MSG = [{"role": "user", "content": "Explain why indentation consistency matters in Python codebases."}]


def loop_cfg(concurrency, max_conc=4, latency_ms=10.0, **ep):
    sim = {"provider": "simulated", "max_concurrency": max_conc, "simulation": {"latency_ms": latency_ms}, **ep}
    return validate_config(
        {
            "seed": 0,
            "documents": {"paths": [str(ROOT / "examples" / "corpus" / "papers")]},
            "loop": {"concurrency": concurrency, "max_rounds": 3},
            "cache": {"enabled": False},
            "models": ladder_models(lambda model, **keys: {**sim, "model": model, **keys}),
            "roles": ladder_roles(),
        }
    )


async def _run(tmp_path, concurrency):
    cfg = loop_cfg(concurrency)
    rt = ModelRuntime(cfg, cache=None)
    await run(cfg, tmp_path / f"run-{concurrency}", limit=8, runtime=rt, use_cache=False)
    peaks = {name: rt.endpoint(name).window.peak_in_flight for name in ("challenger", "judge", "weak", "strong")}
    examples = (tmp_path / f"run-{concurrency}" / "examples.jsonl").read_text().splitlines()
    await rt.aclose()
    return peaks, [{k: v for k, v in json.loads(e).items() if k != "created_at"} for e in examples]


async def test_auto_admission_fills_every_endpoint_and_changes_no_result(tmp_path):
    auto_peaks, auto_examples = await _run(tmp_path, "auto")
    one_peaks, one_examples = await _run(tmp_path, 1)
    assert auto_examples == one_examples  # admission decides when, never what
    assert one_peaks["challenger"] == 1  # one document at a time: one proposal at a time
    # the windows the work reaches were full at some point (few rounds get past weak-first to the strong side)
    assert auto_peaks["judge"] == auto_peaks["weak"] == 4 and auto_peaks["challenger"] >= 2, auto_peaks


async def test_each_documents_calls_carry_its_admission_order_as_their_priority(tmp_path):
    """A freed endpoint slot goes to the oldest document in flight (``llm.limits.request_priority``): the
    driver gives every call of a document its admission order."""
    from autodata.llm.limits import request_priority
    from autodata.llm.usage import current_document

    cfg = loop_cfg("auto", max_conc=2)
    rt = ModelRuntime(cfg, cache=None)
    seen: dict[str, set[int]] = {}
    for name in ("challenger", "judge", "weak", "strong"):
        backend = rt.endpoint(name).pool.replicas[0].backend
        real = backend.send

        async def send(body, real=real):
            seen.setdefault(current_document.get(), set()).add(request_priority.get())
            return await real(body)

        backend.send = send
    await run(cfg, tmp_path / "run", limit=6, runtime=rt, use_cache=False)
    await rt.aclose()
    order = [json.loads(line)["document_id"] for line in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()]
    assert [seen[doc] for doc in order] == [{i} for i in range(1, 7)]


def test_documents_in_flight_is_bounded():
    cfg = loop_cfg("auto", max_conc=4)
    assert documents_in_flight(cfg, settings_from(cfg)) == 2 * 4 * 4
    assert documents_in_flight(loop_cfg(5)) == 5
    assert documents_in_flight(loop_cfg("auto", max_conc=1)) == 8
    assert documents_in_flight(loop_cfg("auto", max_conc=4000)) == 4096


async def test_has_room_while_a_window_has_free_slots_and_none_is_backed_up():
    from autodata.loop.run import DocumentJob, accepted_example

    cfg = loop_cfg("auto", max_conc=2)
    ex = LocalExecutor(cfg, runtime=ModelRuntime(cfg, cache=None))
    await ex.start(DocumentJob(cfg, settings_from(cfg), accepted_example, "h"))
    assert ex.endpoint_names == ["challenger", "judge", "strong", "weak"]
    assert ex.has_room()
    windows = [ex.rt.endpoint(n).window for n in ex.endpoint_names]
    for w in windows:
        await w.acquire()
        await w.acquire()
    assert not ex.has_room()  # every slot taken
    windows[0].release()
    assert ex.has_room()
    waiters = [asyncio.ensure_future(windows[1].acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    assert windows[1].waiting == 2 and not ex.has_room()  # a full window queued: more documents would only wait
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    await ex.close()


def _rt_cfg(**ep):
    base = {"provider": "simulated", "model": "sim-weak", **ep}
    return validate_config({"seed": 0, "models": {"weak": base}})


async def test_k_samples_as_one_n_request_each_cached_under_its_own_key(tmp_path):
    cache = CallCache(tmp_path / "calls.sqlite")
    rt = ModelRuntime(_rt_cfg(supports_n=True), cache=cache)
    sent = []
    backend = rt.endpoint("weak").pool.replicas[0].backend
    real_send = backend.send

    async def send(body):
        sent.append(body)
        return await real_send(body)

    backend.send = send
    got = await rt.complete_n("weak", MSG, 3, params={"temperature": 0.7})
    assert len(sent) == 1 and sent[0]["n"] == 3  # one request, one prefill
    assert rt.meter.totals.calls == 1
    assert len({c.text for c in got}) == 3 and [c.sample for c in got] == [0, 1, 2]
    assert sum(c.usage.input_tokens for c in got) == got[0].usage.input_tokens > 0  # the prompt counted once
    assert sum(c.usage.output_tokens for c in got) == rt.meter.totals.output_tokens
    again = ModelRuntime(_rt_cfg(supports_n=True), cache=cache)
    assert [c.text for c in await again.complete_n("weak", MSG, 3, params={"temperature": 0.7})] == [
        c.text for c in got
    ]
    assert again.meter.totals.calls == 0  # every sample came from its own cache entry
    more = await again.complete_n("weak", MSG, 4, params={"temperature": 0.7})  # one missing: a plain request
    assert again.meter.totals.calls == 1 and [c.text for c in more[:3]] == [c.text for c in got]
    # the same config and cache give the same answers (the request is seeded with the first missing sample)
    fresh = ModelRuntime(_rt_cfg(supports_n=True), cache=None)
    assert [c.text for c in await fresh.complete_n("weak", MSG, 3, params={"temperature": 0.7})] == [
        c.text for c in got
    ]
    await rt.aclose()
    await again.aclose()
    await fresh.aclose()


async def test_without_supports_n_k_requests_and_a_short_reply_is_an_error():
    rt = ModelRuntime(_rt_cfg(), cache=None)
    await rt.complete_n("weak", MSG, 3)
    assert rt.meter.totals.calls == 3
    short = ModelRuntime(_rt_cfg(supports_n=True), cache=None)
    backend = short.endpoint("weak").pool.replicas[0].backend

    async def one_choice(body):
        _status, payload = SimulatedLadder(global_seed=0).respond({**body, "n": 1})
        return Reply(payload, {})

    backend.send = one_choice
    got = await short.complete_n("weak", MSG, 2)
    assert got[0].text and "supports_n: false" in str(got[1])


async def test_each_attempt_is_judged_as_soon_as_it_returns():
    """The first attempt's judge call starts while a slower attempt is still generating."""
    from autodata.judging.schemas import RubricItem
    from autodata.loop.episode import Steps
    from autodata.roles.schemas import ChallengerOutput

    cfg = loop_cfg("auto", latency_ms=0)
    rt = ModelRuntime(cfg, cache=None)
    events = []
    weak = rt.endpoint("weak").pool.replicas[0].backend
    judge = rt.endpoint("judge").pool.replicas[0].backend
    weak_send, judge_send = weak.send, judge.send

    async def slow_weak(body):
        slow = body["seed"] % 2  # some samples take longer than others
        await asyncio.sleep(0.2 if slow else 0.0)
        events.append(("answer", slow))
        return await weak_send(body)

    async def judge_log(body):
        events.append(("judge", None))
        return await judge_send(body)

    weak.send, judge.send = slow_weak, judge_log
    example = ChallengerOutput(
        question_type="explanation", reasoning_skills=["recall"], context="Python uses indentation for blocks.",
        question="Why does indentation matter in Python?", reference_answer="It defines blocks.",
        rubric=[RubricItem(criterion="Says indentation defines blocks", weight=1, category="key point")],
    )  # fmt: skip
    from autodata.documents import Document

    steps = Steps(
        rt,
        Document(id="d", text="Python uses indentation for blocks.", source="s", title="t", format="txt"),
        settings_from(cfg),
    )
    await steps.attempts(example, strong=False)
    first_judge = events.index(("judge", None))
    assert ("answer", 1) in events[first_judge:], events  # a judge call started before a slow answer came back
    await rt.aclose()
