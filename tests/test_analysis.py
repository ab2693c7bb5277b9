"""Data-set analysis on fixed fixtures and on the simulated ladder: each metric checked against known truth."""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from autodata.analysis.compare import compare, markdown, meets, write
from autodata.analysis.contamination import check, check_run, load_benchmark
from autodata.analysis.dedup import DEDUP_FILE, dedup_run
from autodata.analysis.diversity import distribution, diversity
from autodata.analysis.reliability import fleiss_kappa, judge_reliability, summarise
from autodata.analysis.runs import load_run
from autodata.analysis.similarity import jaccard, near_duplicate_pairs, shingles
from autodata.analysis.stats import bootstrap_mean
from autodata.baselines.run import run_baseline
from autodata.cli import app
from autodata.config import validate_config
from autodata.errors import UserError
from autodata.example import Example
from autodata.judging.acceptance import preset
from autodata.loop.run import run

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"w{i}{chr(97 + i % 26)}" for i in range(600)]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def example(i: int, question: str, context: str, *, gap: float = 0.3, meets_acc: bool = True) -> dict:
    return {
        "id": f"ex-{i}",
        "document_id": f"doc-{i}",
        "question_type": "explanation" if i % 2 else "comparison",
        "reasoning_skills": ["synthesis"],
        "context": context,
        "question": question,
        "reference_answer": "r",
        "rubric": [{"criterion": "c", "weight": 1}],
        "weak": {"attempts": [], "mean": 0.4},
        "strong": {"attempts": [], "mean": 0.4 + gap},
        "gap": gap,
        "meets_acceptance": meets_acc,
    }


def write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# ------------------------------------------------------------------------------------------ bootstrap


@pytest.mark.parametrize(
    ("draw", "truth", "confidence"),
    [
        (lambda rng: rng.beta(2.0, 5.0, size=40), 2 / 7, 0.95),  # skewed, bounded: like rubric means
        (lambda rng: rng.beta(2.0, 5.0, size=40) - rng.beta(5.0, 2.0, size=40), 2 / 7 - 5 / 7, 0.90),  # paired gaps
        (lambda rng: (rng.random(60) < 0.3).astype(float), 0.3, 0.95),  # share meeting a preset
    ],
)
def test_bootstrap_intervals_cover_the_truth_at_the_nominal_rate(draw, truth, confidence):
    rng = np.random.default_rng(20240601)
    replicates = 800
    hits = 0
    for r in range(replicates):
        e = bootstrap_mean(draw(rng), confidence=confidence, resamples=1000, seed=r)
        assert e.low <= e.mean <= e.high
        hits += e.low <= truth <= e.high
    coverage = hits / replicates
    # 3 standard errors of an 800-replicate estimate, plus 1 point for the bootstrap's known small-sample
    # undercoverage (measured at n=40 over 2000 replicates: 88.9 % for 90 %, 94.7 % for 95 %)
    tolerance = 3 * (confidence * (1 - confidence) / replicates) ** 0.5 + 0.01
    assert abs(coverage - confidence) <= tolerance, coverage


def test_bootstrap_edge_cases():
    assert bootstrap_mean([]) is None
    e = bootstrap_mean([0.5, 0.5, 0.5])
    assert (e.mean, e.low, e.high, e.n) == (0.5, 0.5, 0.5, 3)
    one = bootstrap_mean([0.2])
    assert (one.low, one.high) == (0.2, 0.2)
    a, b = bootstrap_mean(list(range(30)), seed=1), bootstrap_mean(list(range(30)), seed=1)
    assert a == b  # seeded: the same interval every time


# ------------------------------------------------------------------------------------------ dedup


@pytest.fixture
def planted(tmp_path):
    """40 distinct examples plus planted duplicates: a copy of #3 (better gap), two edits of #7, and a
    question reused on a different context (#12): a duplicate question, but a different task."""
    rng = random.Random(7)
    rows = [example(i, sentence(rng, 16), sentence(rng, 30), gap=0.3) for i in range(40)]
    rows.append({**rows[3], "id": "ex-copy-of-3", "gap": 0.45})
    q7 = rows[7]["question"].split()
    rows.append({**rows[7], "id": "ex-edit1-of-7", "question": " ".join([*q7[:-1], "changed"]), "gap": 0.5,
                 "meets_acceptance": False})  # fmt: skip
    rows.append({**rows[7], "id": "ex-edit2-of-7", "question": " ".join(["Now", *q7[1:]]), "gap": 0.1})
    rows.append({**rows[12], "id": "ex-same-question-as-12", "context": sentence(rng, 30)})
    d = tmp_path / "run"
    d.mkdir()
    write_lines(d / "examples.jsonl", rows)
    return d, rows


def test_dedup_finds_planted_duplicates_and_keeps_the_best(planted):
    d, rows = planted
    before = (d / "examples.jsonl").read_bytes()
    result = dedup_run(d, threshold=0.7)
    clusters = {c["kept"]: sorted(x["id"] for x in c["dropped"]) for c in result["clusters"]}
    # a copy with a larger gap wins; an edit with a larger gap loses because it fails the acceptance predicate
    assert clusters == {"ex-copy-of-3": ["ex-3"], "ex-7": ["ex-edit1-of-7", "ex-edit2-of-7"]}
    assert result["examples_before"] == 44 and result["examples_after"] == 41 and result["dropped"] == 3
    kept = [json.loads(x)["id"] for x in (d / DEDUP_FILE).read_text().splitlines()]
    assert len(kept) == 41 and "ex-3" not in kept and "ex-copy-of-3" in kept and "ex-same-question-as-12" in kept
    assert kept == [r["id"] for r in rows if r["id"] in set(kept)]  # file order kept
    assert (d / "examples.jsonl").read_bytes() == before  # the original is untouched
    report = json.loads((d / "dedup.json").read_text())
    dropped = {x["id"]: x for c in report["clusters"] for x in c["dropped"]}
    assert dropped["ex-3"]["similarity_to_kept"] == 1.0 and "near-duplicate" in dropped["ex-3"]["reason"]
    assert 0.7 <= dropped["ex-edit1-of-7"]["similarity_to_kept"] < 1.0
    by_question = dedup_run(d, threshold=0.7, on="question")
    assert {"ex-12", "ex-same-question-as-12"} <= {c["kept"] for c in by_question["clusters"]} | {
        x["id"] for c in by_question["clusters"] for x in c["dropped"]
    }
    assert by_question["dropped"] == 4


def test_similarity_primitives():
    assert shingles("The cat sat on the mat", 3) == {"the cat sat", "cat sat on", "sat on the", "on the mat"}
    assert shingles("two words", 3) == {"two words"} and shingles("", 3) == set()
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3) and jaccard(set(), set()) == 0.0
    texts = ["alpha beta gamma delta epsilon zeta", "alpha beta gamma delta epsilon zeta", "one two three four"]
    pairs = near_duplicate_pairs(texts, threshold=0.8)
    assert [(p.a, p.b, p.similarity) for p in pairs] == [(0, 1, 1.0)]


def test_dedup_refuses_bad_input(tmp_path):
    with pytest.raises(UserError, match=r"no examples\.jsonl"):
        dedup_run(tmp_path)
    write_lines(tmp_path / "examples.jsonl", [])
    with pytest.raises(UserError, match="threshold"):
        dedup_run(tmp_path, threshold=1.5)


# ------------------------------------------------------------------------------------------ diversity


def test_distribution_and_diversity_numbers():
    d = distribution(["a", "a", "b", "c"])
    assert d["distinct"] == 3 and d["entropy_bits"] == pytest.approx(1.5)
    assert d["evenness"] == pytest.approx(1.5 / np.log2(3)) and d["top"][0] == {"label": "a", "share": 0.5}
    assert distribution([])["distinct"] == 0 and distribution(["x", "x"])["evenness"] == 0.0
    rng = random.Random(1)
    rows = [example(i, sentence(rng, 12), sentence(rng, 20)) for i in range(6)]
    rows[5] = {**rows[4], "id": "dup"}  # same document and text as #4
    div = diversity([Example.load(r) for r in rows], documents=10)
    assert div["documents"] == {"finished": 10, "with_examples": 5, "coverage": 0.5, "max_examples_per_document": 2}
    assert div["near_duplicate_pairs"] == 1 and div["similarity"]["max"] == 1.0 and div["similarity"]["pairs"] == 15
    assert div["question_types"]["distinct"] == 2


# ------------------------------------------------------------------------------------------ contamination


def test_contamination_flags_a_planted_overlap(tmp_path):
    rng = random.Random(3)
    bench = [sentence(rng, rng.randint(12, 20)) for _ in range(20)] + ["What is entropy?"]
    (tmp_path / "bench.jsonl").write_text("".join(json.dumps({"problem": q}) + "\n" for q in bench))
    rows = [example(i, sentence(rng, 15), "ctx") for i in range(30)]
    rows.append(example(100, "Please answer: " + bench[5], "ctx"))  # a copy with a prefix
    rows.append(example(101, " ".join(bench[6].split()[:8]) + " " + sentence(rng, 10), "ctx"))  # one shared 8-gram
    rows.append(example(102, "what is ENTROPY", "ctx"))  # shorter than n: compared at its own length
    d = tmp_path / "run"
    d.mkdir()
    write_lines(d / "examples.jsonl", rows)
    (d / "summary.json").write_text(json.dumps({"documents": {}, "calls": 0}))
    result = check_run(d, tmp_path / "bench.jsonl", n=8, threshold=0.5)
    assert [r["id"] for r in result["flagged_examples"]] == ["ex-102", "ex-100"]
    words = len(bench[5].split())  # the copy adds 2 words: (words - 7) of its (words - 5) 8-grams are the benchmark's
    assert result["flagged_examples"][1]["overlap"] == pytest.approx((words - 7) / (words - 5))
    assert result["checked"] == 33 and result["benchmark_items"] == 21
    low = check([Example.load(r) for r in rows[-2:-1]], bench, n=8, threshold=0.5)
    assert low["flagged"] == 0 and low["max_overlap"] == pytest.approx(1 / 11)
    summary = json.loads((d / "summary.json").read_text())
    assert summary["contamination"]["flagged"] == 2 and summary["contamination"]["flagged_ids"] == ["ex-102", "ex-100"]
    assert json.loads((d / "contamination.json").read_text())["flagged"] == 2


def test_benchmark_formats(tmp_path):
    (tmp_path / "b.txt").write_text("first question\n\nsecond question\n")
    assert load_benchmark(tmp_path / "b.txt") == ["first question", "second question"]
    (tmp_path / "b.json").write_text(json.dumps([{"prompt": "p1"}, "p2"]))
    assert load_benchmark(tmp_path / "b.json") == ["p1", "p2"]
    (tmp_path / "c.jsonl").write_text(json.dumps({"query": "q"}) + "\n")
    assert load_benchmark(tmp_path / "c.jsonl", field="query") == ["q"]
    with pytest.raises(UserError, match="pass --field"):
        load_benchmark(tmp_path / "c.jsonl")
    with pytest.raises(UserError, match="cannot read"):
        load_benchmark(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------------------------ judge reliability


def test_fleiss_kappa_and_summary_by_hand():
    assert fleiss_kappa([[1, 1], [0, 0]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 0], [0, 1]]) == pytest.approx(-1.0)
    assert fleiss_kappa([[1, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]]) == pytest.approx(1 / 3)
    assert fleiss_kappa([[1, 1], [1, 1]]) is None and fleiss_kappa([]) is None
    judged = [{"weights": [2, 1, -1], "stored": [1, 0, 0], "remarks": [[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 0, 1]]}]
    s = summarise(judged, k_weak=3, k_strong=3, examples=4)
    assert s["agreement"] == pytest.approx(2.5 / 3)
    assert s["agreement_positive_criteria"] == pytest.approx(0.875) and s["agreement_negative_criteria"] == 0.75
    assert s["agreement_with_stored_marks"] == pytest.approx(2.5 / 3)
    assert s["score_variance_mean"] == pytest.approx(2 / 27)  # scores 2/3, 1, 2/3, 1/3
    assert s["gap_noise_sd_points_per_example"] == pytest.approx(100 * (2 / 27 * 2 / 3) ** 0.5)
    assert s["gap_noise_sd_points_dataset_mean"] == pytest.approx(s["gap_noise_sd_points_per_example"] / 2)


def sim_config(tmp: Path, **judge_sampling: float):
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"]["paths"] = [str(ROOT / "examples" / "corpus" / "papers")]
    data["cache"] = {"path": str(tmp / "cache.sqlite")}
    data["models"]["judge"]["sampling"].update(judge_sampling)
    return validate_config(data)


@pytest.fixture(scope="module")
def sim_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    cfg = sim_config(tmp)

    async def go():
        await run(cfg, tmp / "agentic", limit=8)
        await run_baseline(cfg, tmp / "grounded", "grounded", limit=8)

    asyncio.run(go())
    return tmp


def test_a_deterministic_judge_agrees_with_itself_completely(sim_runs, tmp_path):
    report = asyncio.run(judge_reliability(sim_config(tmp_path), sim_runs / "agentic", answers=12, repeats=3))
    assert report["answers"] == 12 and report["failed_calls"] == 0
    assert report["agreement"] == 1.0 and report["agreement_with_stored_marks"] == 1.0
    assert report["score_variance_mean"] == 0.0 and report["gap_noise_sd_points_dataset_mean"] == 0.0
    assert json.loads((sim_runs / "agentic" / "judge_reliability.json").read_text())["agreement"] == 1.0


def test_a_sampling_judge_shows_its_noise(sim_runs, tmp_path):
    cfg = sim_config(tmp_path, temperature=0.8)
    report = asyncio.run(judge_reliability(cfg, sim_runs / "agentic", answers=20, repeats=4))
    assert report["answers"] >= 18
    assert 0.9 < report["agreement"] < 1.0  # the simulated judge flips 3 % of marks at random
    assert report["fleiss_kappa"] < 1.0 and report["score_variance_mean"] > 0
    assert 0 < report["gap_noise_sd_points_dataset_mean"] < report["gap_noise_sd_points_per_example"]
    with pytest.raises(UserError, match="repeats"):
        asyncio.run(judge_reliability(cfg, sim_runs / "agentic", repeats=1))


# ------------------------------------------------------------------------------------------ compare


def test_compare_builds_table_one_for_any_runs(sim_runs, tmp_path):
    runs = [load_run(sim_runs / "agentic"), load_run(sim_runs / "grounded")]
    result = compare(runs, resamples=500)
    agentic, grounded = result["rows"]
    assert result["preset"] == "deployed" and agentic["method"] == "agentic" and grounded["method"] == "grounded"
    assert agentic["meets_preset_pct"]["mean"] == 100.0  # every accepted example meets the predicate it passed
    exs = runs[1].examples
    assert grounded["meets_preset_pct"]["mean"] == pytest.approx(
        100 * np.mean([meets(e, preset("deployed")) for e in exs])
    )
    assert grounded["examples"] == len(exs) and grounded["documents"] == 8
    assert grounded["weak_pct"]["mean"] == pytest.approx(100 * np.mean([e.weak.mean for e in exs]))
    gap = grounded["gap_points"]
    assert gap["low"] <= gap["mean"] <= gap["high"]
    assert gap["mean"] == pytest.approx(grounded["strong_pct"]["mean"] - grounded["weak_pct"]["mean"])
    assert agentic["gap_points"]["mean"] > grounded["gap_points"]["mean"] + 20
    assert grounded["calls_per_example"] == pytest.approx(runs[1].summary["calls"] / len(exs))
    assert grounded["rounds_per_example"]["mean"] == 1.0 and agentic["rounds_per_example"]["mean"] > 1.0
    assert grounded["rubric_items"]["mean"] == 7.0 and grounded["diversity"]["documents"]["finished"] == 8
    md = markdown(result)
    assert "| agentic |" in md and "## Diversity" in md and "SIMULATED" in md
    md_path, js_path = write(result, tmp_path / "cmp")
    assert json.loads(js_path.read_text())["rows"][1]["method"] == "grounded" and md_path.read_text() == md
    prose = compare(runs, preset_name="prose", resamples=500)
    assert prose["preset"] == "prose"


def test_cli_compare_dedup_and_contamination(sim_runs, tmp_path):
    cli = CliRunner()
    res = cli.invoke(app, ["dedup", str(sim_runs / "grounded")])
    assert res.exit_code == 0 and "near-duplicate clusters" in res.output
    res = cli.invoke(
        app, ["compare", str(sim_runs / "agentic"), str(sim_runs / "grounded"), "--dedup", "--out", str(tmp_path / "c")]
    )
    assert res.exit_code == 0, res.output
    assert "gap (points)" in res.output and (tmp_path / "c" / "compare.md").exists()
    res = cli.invoke(app, ["compare", str(tmp_path), "--out", str(tmp_path / "c")])
    assert isinstance(res.exception, UserError) and "not a finished run directory" in str(res.exception)
    res = cli.invoke(app, ["compare", str(sim_runs / "agentic"), "--preset", "strict"])
    assert isinstance(res.exception, UserError) and "unknown preset" in str(res.exception)
    bench = tmp_path / "bench.txt"
    bench.write_text(
        json.loads((sim_runs / "grounded" / "examples.jsonl").read_text().splitlines()[0])["question"] + "\n"
    )
    res = cli.invoke(app, ["contamination", str(sim_runs / "grounded"), "--benchmark", str(bench)])
    assert res.exit_code == 0 and "questions flagged" in res.output
    assert json.loads((sim_runs / "grounded" / "summary.json").read_text())["contamination"]["flagged"] >= 1


# ------------------------------------------------------------------------------------------ embeddings


def bag_of_words(text: str, dim: int = 64) -> list[float]:
    v = [0.0] * dim
    for w in text.lower().split():
        v[zlib.crc32(w.encode()) % dim] += 1.0
    return v


async def test_embedding_dedup_catches_a_reordered_paraphrase(tmp_path):
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from autodata.analysis.embeddings import embedding_pairs
    from autodata.sim.server import bind_socket

    seen: list[int] = []

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(len(body["input"]))
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(t)} for i, t in enumerate(body["input"])]
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        )

    rng = random.Random(5)
    rows = [example(i, sentence(rng, 14), "ctx") for i in range(70)]
    words = rows[2]["question"].split()
    rows.append({**rows[2], "id": "ex-reordered", "question": " ".join(reversed(words)), "gap": 0.1})
    d = tmp_path / "run"
    d.mkdir()
    write_lines(d / "examples.jsonl", rows)
    assert dedup_run(d, on="question")["dropped"] == 0  # MinHash over shingles misses a reordering

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])]),
                                           log_level="warning", lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        cfg = validate_config(
            {"models": {"emb": {"provider": "openai", "model": "bag", "base_url": f"http://127.0.0.1:{port}/v1"}}}
        )
        result = await embedding_pairs(cfg, "emb", d, threshold=0.99, on="question")
    finally:
        server.should_exit = True
        await task
    assert seen == [64, 7]  # batched
    assert result["method"] == "embeddings:bag" and result["dropped"] == 1
    assert result["clusters"] == [
        {"kept": "ex-2", "dropped": [{"id": "ex-reordered", "similarity_to_kept": 1.0,
                                      "reason": result["clusters"][0]["dropped"][0]["reason"]}]}
    ]  # fmt: skip
    sim_cfg = validate_config({"models": {"emb": {"provider": "simulated", "model": "sim-weak"}}})
    with pytest.raises(UserError, match="OpenAI-compatible"):
        await embedding_pairs(sim_cfg, "emb", d)


def test_runs_scored_in_code_are_not_re_judged(tmp_path):
    import sqlite3

    d = tmp_path / "v"
    d.mkdir()
    write_lines(d / "examples.jsonl", [])
    (d / "summary.json").write_text("{}")
    db = sqlite3.connect(str(d / "run.db"))
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps({"loop": {"profile": "verifiable"}}),))
    db.commit()
    db.close()
    with pytest.raises(UserError, match="checked in code"):
        asyncio.run(judge_reliability(sim_config(tmp_path), d))
