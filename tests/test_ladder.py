"""The simulated ladder: stateless determinism, realistic usage, seeded faults, server-like errors."""

from __future__ import annotations

import collections
import json

import pytest

from autodata.sim.ladder import FINGERPRINT, LADDER, SimulatedLadder, fake_from_schema

SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string"},
        "weight": {"type": "integer", "minimum": 1, "maximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["question", "weight", "tags"],
}


def body(content="Explain the with statement of PEP 343", **kw):
    return {"model": "sim-weak", "messages": [{"role": "user", "content": content}], **kw}


def test_same_request_same_answer_regardless_of_history():
    a = SimulatedLadder(global_seed=3)
    b = SimulatedLadder(global_seed=3)
    first = a.respond(body(seed=11))
    for i in range(20):  # unrelated traffic in between changes nothing
        a.respond(body(f"other {i}", seed=i))
    assert a.respond(body(seed=11)) == first == b.respond(body(seed=11))


def test_seed_and_global_seed_change_the_answer_but_not_at_temperature_zero():
    ladder = SimulatedLadder()
    text = lambda r: r[1]["choices"][0]["message"]["content"]  # noqa: E731
    assert text(ladder.respond(body(seed=1))) != text(ladder.respond(body(seed=2)))
    assert text(ladder.respond(body(seed=1))) != text(SimulatedLadder(global_seed=9).respond(body(seed=1)))
    assert text(ladder.respond(body(seed=1, temperature=0))) == text(ladder.respond(body(seed=2, temperature=0)))


def test_answers_say_they_are_simulated_and_count_tokens():
    status, payload = SimulatedLadder().respond(body())
    assert status == 200
    assert payload["system_fingerprint"] == FINGERPRINT
    msg = payload["choices"][0]["message"]["content"]
    assert msg.startswith("[simulated sim-weak]")
    usage = payload["usage"]
    assert usage["prompt_tokens"] > 5
    assert usage["completion_tokens"] == pytest.approx(len(msg) / 4, rel=0.05, abs=2)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stronger_models_write_longer_answers_on_average():
    ladder = SimulatedLadder()
    mean = {}
    for name in ("sim-weak", "sim-strong"):
        lengths = [
            ladder.respond({**body(f"topic {i} about coroutines"), "model": name})[1]["usage"]["completion_tokens"]
            for i in range(40)
        ]
        mean[name] = sum(lengths) / len(lengths)
    assert mean["sim-strong"] > mean["sim-weak"] * 1.5


def test_max_tokens_truncates_with_length_finish():
    _, payload = SimulatedLadder().respond(body(max_tokens=5))
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "length"
    assert payload["usage"]["completion_tokens"] <= 5


def test_reasoning_model_returns_reasoning_content():
    _, payload = SimulatedLadder().respond({**body(), "model": "sim-reasoner"})
    msg = payload["choices"][0]["message"]
    assert msg["reasoning_content"].startswith("[simulated reasoning]")
    assert payload["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_errors_look_like_a_real_server():
    ladder = SimulatedLadder()
    status, payload = ladder.respond({**body(), "model": "gpt-9"})
    assert status == 404 and "does not exist" in payload["error"]["message"]
    status, payload = ladder.respond(body("word " * 70000))
    assert status == 400 and "maximum context length is 16384 tokens" in payload["error"]["message"]
    status, payload = ladder.respond({"model": "sim-weak", "messages": []})
    assert status == 400


def test_schema_answers_validate_without_faults():
    import jsonschema

    ladder = SimulatedLadder(fault_rate=0.0)
    rf = {"type": "json_schema", "json_schema": {"name": "Q", "schema": SCHEMA}}
    for i in range(50):
        _, payload = ladder.respond(body(f"question {i}", response_format=rf))
        jsonschema.validate(json.loads(payload["choices"][0]["message"]["content"]), SCHEMA)


def test_schema_is_read_from_the_prompt_in_text_mode():
    prompt = (
        "Write a quiz.\n\nAnswer with a single JSON object and nothing else.\n"
        f'The object must satisfy this JSON Schema ("Q"):\n{json.dumps(SCHEMA)}'
    )
    _, payload = SimulatedLadder(fault_rate=0.0).respond(body(prompt))
    value = json.loads(payload["choices"][0]["message"]["content"])
    assert set(value) >= {"question", "weight", "tags"}


def test_faults_appear_at_the_configured_rate_with_every_kind():
    ladder = SimulatedLadder(fault_rate=0.2)
    rf = {"type": "json_schema", "json_schema": {"name": "Q", "schema": SCHEMA}}
    kinds = collections.Counter()
    n = 600
    for i in range(n):
        _, payload = ladder.respond({**body(f"q {i}", response_format=rf), "model": "sim-strong"})
        choice = payload["choices"][0]
        text = choice["message"]["content"]
        try:
            value = json.loads(text)
        except ValueError:
            kinds[
                "truncated" if choice["finish_reason"] == "length" else "fenced" if "```" in text else "invalid_json"
            ] += 1
            continue
        if set(SCHEMA["required"]) - set(value):
            kinds["missing_field"] += 1
        elif isinstance(value.get("weight"), str):
            kinds["string_number"] += 1
    total = sum(kinds.values())
    assert 0.14 * n <= total <= 0.26 * n  # rate 0.2 (sim-strong has fault_scale 1.0)
    assert set(kinds) == {"truncated", "fenced", "invalid_json", "missing_field", "string_number"}


def test_fake_from_schema_follows_refs_and_enums():
    import random

    schema = {
        "$defs": {"C": {"type": "object", "properties": {"k": {"enum": ["pos", "neg"]}}, "required": ["k"]}},
        "type": "object",
        "properties": {"c": {"$ref": "#/$defs/C"}, "o": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["c", "o"],
    }
    value = fake_from_schema(schema, random.Random(1), ["alpha"])
    assert value["c"]["k"] in ("pos", "neg")
    assert isinstance(value["o"], int)


def test_ladder_names():
    assert {"sim-weak", "sim-strong", "sim-judge", "sim-challenger"} <= set(LADDER)
    assert LADDER["sim-weak"].skill < LADDER["sim-strong"].skill
