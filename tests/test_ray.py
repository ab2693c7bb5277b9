"""The Ray executor: same outputs as the local one, workers that die, a real `ray start` cluster.

Ray's servers bind every network interface, so each Ray scenario runs in its own process inside a
fresh network namespace whose only interface is loopback (``unshare -n``): nothing Ray starts can be
reached from, or reach, anything but 127.0.0.1. It also gets its own PID namespace, so stopping its
Ray cluster cannot touch any other Ray processes on the machine. Where namespaces are not available the scenarios
are skipped, unless ``AUTODATA_REQUIRE_NETNS=1`` (set by CI), which makes that a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

pytest.importorskip("ray")

from autodata.config import load_config
from autodata.executors.ray_pool import share_budgets
from autodata.loop.run import run

ROOT = Path(__file__).resolve().parents[1]


def cfg(*overrides: str):
    return load_config(
        ROOT / "examples" / "quickstart.yaml", [f"documents.paths=[{ROOT / 'examples/corpus/papers'}]", *overrides]
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def outputs(out: Path) -> tuple[list[dict], list[dict]]:
    # frozen_hash: stored when the command computed it (`autodata run`), not by the Python `run()`
    examples = [
        {k: v for k, v in r.items() if k not in ("created_at", "frozen_hash")} for r in lines(out / "examples.jsonl")
    ]
    return examples, lines(out / "episodes.jsonl")


@cache
def _netns_prefix() -> list[str] | None:
    # -p -f --mount-proc: a PID namespace too, so `ray stop --force` in a scenario sees (and stops)
    # only that scenario's Ray processes, never a developer's own cluster on the same machine; and
    # whatever Ray leaves running is killed by the kernel when the scenario's first process exits
    for prefix in (["unshare", "-n", "-p", "-f", "--mount-proc"], ["unshare", "-rn", "-p", "-f", "--mount-proc"]):
        if shutil.which(prefix[0]) is None:
            break
        probe = subprocess.run([*prefix, "true"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def in_loopback_netns(scenario: str, out: Path, home: Path) -> dict:
    prefix = _netns_prefix()
    if prefix is None:
        if os.environ.get("AUTODATA_REQUIRE_NETNS") == "1":
            pytest.fail("network and PID namespaces (unshare -n -p) are required here but not available")
        pytest.skip("no network and PID namespaces available for Ray (unshare -n -p)")
    script = f"ip link set lo up && exec {sys.executable} tests/ray_scenarios.py {scenario} {out}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"RAY_USAGE_STATS_ENABLED": "0"}
    env["HOME"] = str(home)  # Ray keeps an auth token under ~/.ray: the test's own, not the user's
    res = subprocess.run([*prefix, "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-4000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    summary = asyncio.run(run(cfg(), out, limit=8, use_cache=False))
    return out, summary


def test_budgets_are_shared_out_exactly_among_workers():
    c = cfg("models.weak.max_concurrency=10", "models.weak.rpm=601", "models.weak.tpm=90000", "cache.path=/x/c.db")
    shares = [share_budgets(c, 4, i).models["weak"] for i in range(4)]
    assert [w.max_concurrency for w in shares] == [3, 3, 2, 2]  # 10 in all, never more
    assert [w.rpm for w in shares] == [151, 150, 150, 150]
    assert [w.tpm for w in shares] == [22500] * 4
    assert all(w.min_concurrency <= w.max_concurrency for w in shares)
    one = share_budgets(c, 4, 0)
    assert one.models["strong"].rpm is None and one.cache.path == "/x/c.db"
    for total in range(1, 40):  # the parts always add up to the whole
        for n in range(1, total + 1):
            c2 = cfg(f"models.weak.max_concurrency={total}")
            assert sum(share_budgets(c2, n, i).models["weak"].max_concurrency for i in range(n)) == total


def test_more_workers_than_an_endpoint_has_slots_is_a_config_error():
    from autodata.config import ConfigError
    from autodata.executors.ray_pool import RayExecutor, check_shares

    c = cfg("executor.kind=ray", "executor.workers=4", "models.weak.max_concurrency=3", "models.judge.rpm=2")
    with pytest.raises(ConfigError) as err:
        RayExecutor(c)
    text = err.value.render()
    # every offender, and the largest worker count that fits them all
    assert "executor.workers" in text and "at most 2" in text
    assert "models.weak.max_concurrency is 3" in text and "models.judge.rpm is 2" in text
    # an endpoint the run never calls does not count, and the other commands never look
    check_shares(cfg("models.unused={provider: simulated, model: sim-weak, max_concurrency: 1}"), 4)
    assert cfg("executor.kind=ray", "executor.workers=64").executor.workers == 64


def test_the_driver_folds_in_worker_reports(monkeypatch):
    """What a worker's report does at the driver, without a cluster: call rows go to the call log's queue and
    the live totals, a long wait reaches the progress line (``cli_common._show_waits``), servers that said
    they are simulated are remembered, started documents free their worker's queue for admission."""
    import io

    from rich.console import Console

    from autodata import cli_common
    from autodata.executors.ray_pool import WORKER_QUEUE, RayExecutor

    ex = RayExecutor(cfg("executor.kind=ray", "executor.workers=2"))
    ex.unstarted = [{f"d{i}" for i in range(WORKER_QUEUE)}, {"e0"}]
    assert ex.has_room()  # worker 1 holds fewer than WORKER_QUEUE documents it has not started
    ex.unstarted[1] |= {f"e{i}" for i in range(WORKER_QUEUE)}
    assert not ex.has_room()
    shown = io.StringIO()
    monkeypatch.setattr(cli_common, "err", Console(file=shown, width=200))
    cli_common._show_waits(ex)
    woken: list[int] = []
    ex.on_call = lambda: woken.append(1)
    row = {"at": 1.0, "document_id": "d0", "endpoint": "weak", "role": "weak_solver", "cache_hit": False,
           "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5, "latency_s": 0.1}  # fmt: skip
    report = {"started": ["d0", "d1"], "rows": [row], "waits": [["weak", 30.0, "Retry-After from the server"]],
              "simulated": ["weak"]}  # fmt: skip
    ex._take(0, report)
    assert "weak: waiting 30 s (Retry-After from the server)" in shown.getvalue()
    assert woken and ex.has_room() and ex.unstarted[0] == {f"d{i}" for i in range(2, WORKER_QUEUE)}
    assert ex.leftover_calls() == [row] and ex.leftover_calls() == []
    assert ex.totals().calls == 1 and ex.totals().cost_usd == 0.5
    assert ex.simulated_endpoints() == ["weak"]
    ex._take(1, {"started": [], "rows": [], "waits": [["judge", 2.0, "backoff"]], "simulated": ["judge"]})
    assert "judge" not in shown.getvalue()  # below 5 s: not worth a line
    assert ex.simulated_endpoints() == ["judge", "weak"]


async def test_a_worker_admits_a_document_only_while_its_windows_have_room():
    """Budget admission inside a Ray worker, without a cluster (the actor's own class on this event loop):
    the first document starts at once, the next waits while the worker's share of the windows is full and
    starts when a call comes back and frees a slot; each start is reported to the driver at once, with the
    call rows, waits and simulated endpoints gathered since the last report."""
    from types import SimpleNamespace

    from autodata.executors.ray_pool import DocumentWorker

    class Windows:  # stands in for LocalExecutor: its windows' room, its call rows, its episodes
        def __init__(self) -> None:
            self.room, self.release, self.rows = False, asyncio.Event(), [{"document_id": "a"}]
            self.on_call = self.on_wait = None

        def has_room(self) -> bool:
            return self.room

        async def process(self, doc):
            await self.release.wait()
            return doc.id

        def leftover_calls(self):
            rows, self.rows = self.rows, []
            return rows

        def simulated_endpoints(self):
            return ["weak"]

    worker = DocumentWorker.__ray_actor_class__(None, False, True)
    ex = worker.executor = Windows()
    first = asyncio.create_task(worker.process(SimpleNamespace(id="a")))
    second = asyncio.create_task(worker.process(SimpleNamespace(id="b")))
    report = await worker.poll(5.0)
    assert report["started"] == ["a"] and report["rows"] == [{"document_id": "a"}] and report["simulated"] == ["weak"]
    worker._waiting("judge", 30.0, "Retry-After")
    report = await asyncio.wait_for(worker.poll(5.0), 1.0)  # a wait is news: reported at once
    assert report["started"] == [] and report["waits"] == [("judge", 30.0, "Retry-After")]
    assert (await worker.poll(0.05))["started"] == []  # b waits: no room in the windows
    ex.room = True
    worker.changed.set()  # what the executor's on_call does when a call comes back
    assert (await asyncio.wait_for(worker.poll(5.0), 1.0))["started"] == ["b"]
    ex.release.set()
    assert await first == "a" and await second == "b" and worker.running == 0
    # without the gate (a fixed loop.concurrency) a document starts at once whatever the windows say
    ungated = DocumentWorker.__ray_actor_class__(None, False, False)
    ungated.executor = Windows()
    ungated.executor.release.set()
    assert await asyncio.gather(ungated.process(SimpleNamespace(id="c")), ungated.process(SimpleNamespace(id="d")))
    assert (await ungated.poll(0.0))["started"] == ["c", "d"]


def test_ray_workers_give_the_same_outputs_as_one_process(local_reference, tmp_path):
    out = tmp_path / "ray"
    got = in_loopback_netns("same_outputs", out, tmp_path)
    assert outputs(out) == outputs(local_reference[0])
    ref = local_reference[1]
    assert got["calls"] == ref["calls"] and got["usage_by_role"] == ref["usage_by_role"]
    assert got["ray_left_up"] is False  # the executor shut down the instance it started


def test_a_worker_that_dies_has_its_documents_run_elsewhere(local_reference, tmp_path):
    out = tmp_path / "ray"
    got = in_loopback_netns("worker_dies", out, tmp_path)
    assert got["killed"]
    docs = got["documents"]
    assert docs["failed_this_session"] == 0 and docs["accepted"] + docs["exhausted"] == 8
    assert outputs(out) == outputs(local_reference[0])


def test_ray_workers_report_simulated_servers_and_their_waits_to_the_driver(tmp_path):
    """Labels that are true and waits that are shown, on Ray as locally (issue 12): a server that says it is
    the simulator (``system_fingerprint``) is labelled simulated in the summary, the store, the card and the
    report; a worker's Retry-After pause reaches the driver's ``on_wait`` (the progress line's hook)."""
    out = tmp_path / "labels"
    got = in_loopback_netns("labels_and_waits", out, tmp_path)
    assert got["documents"]["failed_this_session"] == 0, got
    assert got["simulated"] is True
    assert got["simulated_models"] == ["challenger", "judge", "strong", "weak"]
    assert got["faults"].get("429+retry-after") == 1, got["faults"]
    assert got["waits"] and 1.0 <= max(w[1] for w in got["waits"]) <= 1.3, got["waits"]

    from autodata.export.rows import select
    from autodata.export.write import dataset_card
    from autodata.report.build import run_report
    from autodata.run_info import RunInfo
    from autodata.store.run_store import RunStore

    store = RunStore.open_existing(out)
    try:
        assert RunInfo.load(store).simulated
        assert "SIMULATED DATA" in dataset_card(store, select(store), "jsonl", ["question"])
    finally:
        store.close()
    assert any("SIMULATED" in note for note in run_report(out).notes)


def test_run_on_a_ray_start_cluster_on_loopback(local_reference, tmp_path):
    out = tmp_path / "cluster"
    got = in_loopback_netns("cluster", out, tmp_path)
    assert got["returncode"] == 0, got["stderr"]
    assert outputs(out) == outputs(local_reference[0])
    # every listening socket of the cluster was on loopback (the namespace has nothing else)
    addresses = [line.split()[3] for line in got["listening"].splitlines() if line.strip()]
    loopback = ("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:", "*:", "0.0.0.0:", "[::]:")
    assert addresses and all(a.startswith(loopback) for a in addresses)


def test_a_killed_driver_resumes_on_the_cluster_and_its_summary_counts_every_call_logged(local_reference, tmp_path):
    """kill -9 of a Ray driver mid-run, then resume: outputs as uninterrupted, and the summary's usage is the
    call log's, which holds the calls the workers made for documents still running when the driver died
    (they report their calls as they come back, not with the finished document). The local executor's
    version of this test is tests/test_run.py::test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run."""
    out = tmp_path / "resumed"
    got = in_loopback_netns("driver_killed", out, tmp_path)
    assert got["killed_alive"], "the run ended before it could be killed: " + got["first_stderr"]
    assert got["returncode"] == 0, got["stderr"]
    done = got["done_before"]
    assert 1 <= done < 8
    # calls of documents the killed session never committed reached the log while they ran
    assert got["running_logged"] > 0
    # the second session ran exactly the documents the first did not commit
    assert got["documents_per_session"] == {"1": 0, "2": 8 - done}
    assert outputs(out) == outputs(local_reference[0])
    s = got["summary"]
    assert s["sessions"] == 2 and s["sessions_unfinished"] == 1 and s["documents"]["total"] == 8
    calls, hits, tin, tout, cost = got["table"]
    assert got["first_calls"] > 0  # the killed session's calls are in the log
    assert (s["calls"], s["cache_hits"], s["input_tokens"], s["output_tokens"]) == (calls, hits, tin, tout)
    assert cost > 0 and s["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert sum(r["calls"] for r in s["usage_by_role"].values()) == calls


def test_an_unreachable_cluster_is_a_user_error(tmp_path):
    got = in_loopback_netns("unreachable", tmp_path / "x", tmp_path)
    assert got["returncode"] == 2 and "executor.address" in got["stderr"] and "Traceback" not in got["stderr"]
