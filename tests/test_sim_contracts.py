"""The simulator reads stable contracts only: schema titles and fenced data blocks, never prose.

- Rewriting the prose of every prompt template and every feedback string (synonyms, clause and
  sentence order) while keeping the fenced blocks and schemas leaves the quick start's acceptance
  and rejection mix within a stated band (measured: the two runs are identical).
- Solver and judge requests never carry the reference answer; the simulated solver and judge read
  exactly the blocks a real one is shown.
- The runtime never imports the simulator; ``provider: simulated`` is resolved through the provider
  registry on first use.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jinja2
import pytest
from jinja2.utils import LRUCache

import autodata.prompts as prompts_mod
from autodata.config import DIRECTIVES, load_config
from autodata.judging import templates as judging_templates
from autodata.loop import episode as episode_mod
from autodata.loop.run import run
from autodata.sim import handlers, meta, roles
from autodata.sim.ladder import SimulatedLadder

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------- prose rewrite

SYNONYMS = {
    "too easy": "too simple",
    "failed on strong": "beyond the stronger solver",
    "failed quality check": "did not pass the quality review",
    "question": "query",
    "questions": "queries",
    "answer": "response",
    "answers": "responses",
    "rubric": "marking scheme",
    "criterion": "requirement",
    "criteria": "requirements",
    "document": "source text",
    "weaker": "less capable",
    "stronger": "more capable",
    "model": "system",
    "models": "systems",
    "hard": "difficult",
    "return": "produce",
    "grade": "assess",
    "evidence": "support",
    "instructions": "directions",
    "ignore": "disregard",
    "earlier": "previous",
    "attempts": "tries",
    "rejected": "turned down",
    "context": "setting",
    "weak": "less able",
    "strong": "able",
}
_WORDS = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)) + r")\b", re.I)
_TAG = r"</?[a-z_]+(?:\s+[a-z_]+=\"[^\"]*\")*\s*>"
# kept verbatim: Jinja expressions, statements and comments, and the fenced blocks' opening and closing tags
_JINJA = re.compile(r"({{.*?}}|{%.*?%}|{#.*?#}|" + _TAG + ")", re.S)
_MARKER = re.compile(r"^\s*" + _TAG + r"\s*$")
_OPENER = re.compile(r"^<([a-z_]+)(?:\s+[a-z_]+=\"[^\"]*\")*\s*>\s*$")
_CLOSER = re.compile(r"</([a-z_]+)>")


def _synonyms(text: str) -> str:
    def swap(m: re.Match[str]) -> str:
        new = SYNONYMS[m.group(0).lower()]
        return new[0].upper() + new[1:] if m.group(0)[0].isupper() else new

    return _WORDS.sub(swap, text)


def reword(text: str) -> str:
    """Synonyms, and the sentences of a prose line in reverse order (the two parts of "a: b" swapped)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    if len(sentences) > 1:
        text = " ".join(reversed(sentences))
    elif ": " in text:
        head, _, tail = text.partition(": ")
        text = f"{tail} ({head})"
    return _synonyms(text)


def _protected(line: str, change) -> str:
    return "".join(p if _JINJA.fullmatch(p) else change(p) for p in _JINJA.split(line))


def rewrite_template(source: str) -> str:
    """Every prose line reworded; Jinja, the fenced blocks' tags and everything inside a block kept as is."""
    out: list[str] = []
    fenced: list[str] = []
    for line in source.split("\n"):
        if fenced or _MARKER.match(line) or not line.strip():
            out.append(line)
        elif len(_JINJA.split(line)) == 1 and not line.lstrip().startswith(("-", "[")):
            out.append(reword(line))
        else:
            out.append(_protected(line, _synonyms))
        opener = _OPENER.match(line.strip())
        if opener:
            fenced.append(opener.group(1))
        for label in _CLOSER.findall(line):
            if label in fenced:
                fenced.remove(label)
    return "\n".join(out)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The quick start with the prompts as they are (computed before any rewording)."""
    return _quickstart(tmp_path_factory.mktemp("plain") / "run")


@pytest.fixture
def reworded(monkeypatch, tmp_path):
    """Every template and feedback string reworded for the duration of a test."""
    for env, src, cached, name in (
        (prompts_mod._ENV, ROOT / "src/autodata/prompts", prompts_mod.template, "prompts"),
        (judging_templates._ENV, judging_templates.TEMPLATE_DIR, judging_templates.template, "judging"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        for f in src.glob("*.j2"):
            (folder / f.name).write_text(rewrite_template(f.read_text(encoding="utf-8")), encoding="utf-8")
        monkeypatch.setattr(env, "loader", jinja2.FileSystemLoader(folder))
        monkeypatch.setattr(env, "cache", LRUCache(400))  # the original cache (of the originals) comes back after
        cached.cache_clear()
    original = episode_mod.Steps.propose

    async def propose(self, rnd, feedback, items=()):
        items = [{**i, "messages": [reword(m) for m in i.get("messages", [])]} for i in items]
        return await original(self, rnd, [reword(line) for line in feedback], items)

    monkeypatch.setattr(episode_mod.Steps, "propose", propose)
    yield
    prompts_mod.template.cache_clear()
    judging_templates.template.cache_clear()


def _quickstart(out: Path) -> dict:
    cfg = load_config(ROOT / "examples/quickstart.yaml")
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        summary = asyncio.run(run(cfg, out, use_cache=False))
    finally:
        os.chdir(cwd)
    groups: Counter[str] = Counter()
    for line in (out / "episodes.jsonl").read_text().splitlines():
        for r in json.loads(line)["rounds"]:
            for reason in (r.get("decision") or {}).get("reasons", []):
                groups[reason["group"]] += 1
    return {"accepted": summary["documents"]["accepted"], "calls": summary["calls"], "groups": groups}


def test_the_rewrite_changes_every_prompt_but_keeps_its_blocks():
    for src in (ROOT / "src/autodata/prompts", judging_templates.TEMPLATE_DIR):
        for f in src.glob("*.j2"):
            before = f.read_text(encoding="utf-8")
            after = rewrite_template(before)
            markers = [line for line in before.split("\n") if _MARKER.match(line)]
            assert markers == [line for line in after.split("\n") if _MARKER.match(line)], f.name
            assert _JINJA.findall(before) == _JINJA.findall(after), f.name
            assert after != before, f.name
    assert reword("too easy: weak avg 80% > 65%") == "less able avg 80% > 65% (too simple)"
    judge = rewrite_template((judging_templates.TEMPLATE_DIR / "judge.j2").read_text(encoding="utf-8"))
    assert "</rubric>" in judge and "</answer>" in judge and "<question>" in judge


def test_rewording_every_prompt_and_feedback_string_keeps_the_quick_start_within_its_band(plain, reworded, tmp_path):
    """Band: accepted documents within 2 of the plain run's (of 20), calls within 15 %, each rejection
    group's count within 25 % or 3 of the plain run's. Measured: the two runs are identical (same
    accepted count, calls and mix), because no simulated role reads a word of the prose around its
    blocks; run with -s to see both.
    """
    rendered = prompts_mod.render("challenger.j2", **_CHALLENGER_VALUES)
    assert "Earlier attempts on this document were rejected" not in rendered  # the rewrite is in force
    assert "<document id=" in rendered and "Previous tries on this source text were turned down" in rendered
    got = _quickstart(tmp_path / "reworded")
    print(f"plain: {plain}\nreworded: {got}")  # shown with -s: the figures the band is checked on
    assert abs(got["accepted"] - plain["accepted"]) <= 2, (got, plain)
    assert abs(got["calls"] - plain["calls"]) <= 0.15 * plain["calls"], (got, plain)
    for group in set(plain["groups"]) | set(got["groups"]):
        a, b = plain["groups"][group], got["groups"][group]
        assert abs(a - b) <= max(3, 0.25 * a), (group, got, plain)


_CHALLENGER_VALUES = {
    "instructions": "",
    "directives": "",
    "guidance": "papers",
    "feedback": ["round 1: too easy: weak avg 80% > 65%"],
    "feedback_items": "[]",
    "document_id": "d",
    "title": "t",
    "document": "text",
    "min_positive": 3,
    "max_positive": 7,
    "min_negative": 1,
    "max_negative": 3,
    "max_weight": 7,
    "rubric_rules": "{}",
    "earlier_rounds": "",
    "context_words": (80, 300),
}


# ----------------------------------------------------------------------------------- what each role sees


def test_solver_and_judge_requests_never_carry_the_reference_answer(monkeypatch, tmp_path):
    """A real solver sees the context and the question; a real judge the question, rubric and answer.
    Recorded on every request of a quick-start run: neither carries a reference answer, and the simulated
    solver and judge read exactly those blocks (their contract inputs)."""
    seen: list[tuple[str | None, dict, list]] = []
    identify = handlers.identify

    def spy(schema, messages):
        found = identify(schema, messages)
        seen.append((found[0].name if found else None, found[1] if found else {}, messages))
        return found

    monkeypatch.setattr(handlers, "identify", spy)
    cfg = load_config(ROOT / "examples/quickstart.yaml")
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        asyncio.run(run(cfg, tmp_path / "run", limit=6, use_cache=False))
    finally:
        os.chdir(cwd)
    references = [
        r["example"]["reference_answer"]
        for line in (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()
        for r in json.loads(line)["rounds"]
        if r.get("example")
    ]
    assert references
    by_role = Counter(name for name, _, _ in seen)
    assert by_role["solver"] > 50 and by_role["judge"] > 50 and by_role[None] == 0
    for name, inputs, messages in seen:
        if name not in ("solver", "judge"):
            continue
        assert set(inputs) == ({"context", "question"} if name == "solver" else {"question", "rubric", "answer"})
        body = json.dumps(messages, ensure_ascii=False)
        assert "reference_answer" not in body and "Reference answer" not in body
        assert not any(ref in body or ref in json.dumps(inputs) for ref in references), name


# ----------------------------------------------------------------------------------- contracts


def _body(prompt: str, schema: dict | None = None, **extra) -> dict:
    body = {"model": "sim-judge", "messages": [{"role": "user", "content": prompt}], "temperature": 0, **extra}
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    return body


JUDGE_PROMPT = (
    "Mark it.\n<question>\nWhy?\n</question>\n<rubric>\n[0] mentions 'alpha' and explains its role\n"
    "[1] claims that 'beta' is the same as 'gamma'\n</rubric>\n<answer>\nThe role of alpha matters here.\n</answer>"
)


def test_roles_are_routed_by_schema_class_title_and_every_role_is_keyed_once():
    from autodata.judging.schemas import JudgeMarks

    assert handlers.BY_TITLE[handlers.title_of(JudgeMarks)].name == "judge"
    assert len(handlers.BY_TITLE) == len(handlers.ROLES)
    ladder = SimulatedLadder(fault_rate=0.0)
    code, payload = ladder.respond(_body(JUDGE_PROMPT, JudgeMarks.model_json_schema()))
    marks = json.loads(payload["choices"][0]["message"]["content"])["marks"]
    assert code == 200 and [m["index"] for m in marks] == [0, 1]
    # the same request in JSON mode (the schema spelled out in the prompt) is routed the same way
    spelled = (
        JUDGE_PROMPT + "\n\nReply with JSON for this schema:\n" + json.dumps(JudgeMarks.model_json_schema(), indent=1)
    )
    code2, payload2 = ladder.respond(_body(spelled, None, response_format={"type": "json_object"}))
    assert code2 == 200 and json.loads(payload2["choices"][0]["message"]["content"])["marks"] == marks


def test_a_role_whose_block_is_missing_is_refused_loudly_not_answered_with_filler():
    from autodata.judging.schemas import JudgeMarks

    prompt = JUDGE_PROMPT.replace("<rubric>", "Rubric:").replace("</rubric>", "")
    code, payload = SimulatedLadder().respond(_body(prompt, JudgeMarks.model_json_schema()))
    assert code == 400 and "no <rubric> block" in payload["error"]["message"]


def test_instruction_prose_and_block_order_do_not_change_a_simulated_answer():
    from autodata.judging.schemas import JudgeMarks

    ladder = SimulatedLadder()
    schema = JudgeMarks.model_json_schema()
    a = ladder.respond(_body(JUDGE_PROMPT, schema))[1]["choices"][0]["message"]["content"]
    reordered = (
        "Assess the response below against each requirement; quote support.\n"
        "<answer>\nThe role of alpha matters here.\n</answer>\n"
        "<rubric>\n[0] mentions 'alpha' and explains its role\n"
        "[1] claims that 'beta' is the same as 'gamma'\n</rubric>\n"
        "<question>\nWhy?\n</question>"
    )
    assert ladder.respond(_body(reordered, schema))[1]["choices"][0]["message"]["content"] == a
    solver = "<question>\nWhy does alpha matter?\n</question>\n\n<context>\nalpha beta gamma delta\n</context>"
    swapped = "Use the setting.\n<context>\nalpha beta gamma delta\n</context>\n"
    swapped += "<question>\nWhy does alpha matter?\n</question>"
    one = ladder.respond({**_body(solver), "model": "sim-strong", "seed": 3, "temperature": 0.7})
    two = ladder.respond({**_body(swapped), "model": "sim-strong", "seed": 3, "temperature": 0.7})
    assert one[1]["choices"][0]["message"]["content"] == two[1]["choices"][0]["message"]["content"]
    assert "The role of" in one[1]["choices"][0]["message"]["content"]  # a solver's answer, not filler


def _challenger_question(feedback: list[dict], directives: list[str], seed: int) -> float:
    from autodata.roles.schemas import ChallengerOutput

    prompt = '<document id="d" title="t">\n' + " ".join(f"term{i % 30}word" for i in range(400)) + "\n</document>"
    if feedback:
        prompt += "\n<feedback>\n" + json.dumps(feedback) + "\n</feedback>"
    if directives:
        prompt += "\n<directives>\n" + json.dumps([{"name": d} for d in directives]) + "\n</directives>"
    body = {**_body(prompt, ChallengerOutput.model_json_schema()), "model": "sim-challenger", "temperature": 1.0}
    out = SimulatedLadder(fault_rate=0.0).respond({**body, "seed": seed})[1]
    return roles.difficulty(json.loads(out["choices"][0]["message"]["content"])["question"])


def test_the_challenger_moves_with_reason_codes_and_declared_directives():
    seeds = range(40)
    base = sum(_challenger_question([], [], s) for s in seeds) / 40
    easy = [{"round": 1, "codes": ["weak_mean_too_high", "weak_best_too_high"], "weak_mean": 0.9}]
    harder = sum(_challenger_question(easy, [], s) for s in seeds) / 40
    hard = [{"round": 1, "codes": ["strong_mean_too_low"], "strong_mean": 0.3}]
    easier = sum(_challenger_question(easy + hard * 3, [], s) for s in seeds) / 40
    directed = sum(_challenger_question([], ["multi_step"], s) for s in seeds) / 40
    assert harder > base + 0.2 and easier < harder - 0.2 and directed > base + 0.1
    # the entries' messages are words for a model: rewording them changes no simulated question
    worded = [{**easy[0], "messages": ["too easy: weak avg 90% > 65%"]}]
    reworded = [{**easy[0], "messages": ["the less able solver averaged 90% (too simple)"]}]
    assert [_challenger_question(worded, [], s) for s in seeds] == [
        _challenger_question(reworded, [], s) for s in seeds
    ]


def test_declared_effects_name_only_declared_directives():
    assert set(roles.DIRECTIVE_EFFECTS) <= set(DIRECTIVES)
    assert {roles.NO_LEAK_DIRECTIVE, roles.STRICT_VERIFIER_DIRECTIVE, meta.OVERSHOOT} <= set(DIRECTIVES)
    assert {d for names in meta.HELPFUL.values() for d in names} <= set(DIRECTIVES)


def test_the_runtime_does_not_import_the_simulator_until_a_config_asks_for_it():
    code = (
        "import sys, autodata.llm.runtime, autodata.loop.run, autodata.cli\n"
        "assert not [m for m in sys.modules if m.startswith('autodata.sim')], 'imported early'\n"
        "from autodata.config import load_config\n"
        "from autodata.llm.runtime import ModelRuntime\n"
        "ModelRuntime(load_config('examples/quickstart.yaml'), cache=None).endpoint('weak')\n"
        "assert 'autodata.sim.provider' in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    assert res.returncode == 0, res.stderr


def test_an_unknown_provider_names_the_registered_ones():
    from autodata.errors import ConfigError
    from autodata.llm.providers import get_provider

    with pytest.raises(ConfigError, match="registered providers: openai, simulated"):
        get_provider("nope")
