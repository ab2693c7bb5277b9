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
    examples = [{k: v for k, v in r.items() if k != "created_at"} for r in lines(out / "examples.jsonl")]
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


def test_run_on_a_ray_start_cluster_on_loopback(local_reference, tmp_path):
    out = tmp_path / "cluster"
    got = in_loopback_netns("cluster", out, tmp_path)
    assert got["returncode"] == 0, got["stderr"]
    assert outputs(out) == outputs(local_reference[0])
    # every listening socket of the cluster was on loopback (the namespace has nothing else)
    addresses = [line.split()[3] for line in got["listening"].splitlines() if line.strip()]
    loopback = ("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:", "*:", "0.0.0.0:", "[::]:")
    assert addresses and all(a.startswith(loopback) for a in addresses)


def test_a_killed_driver_resumes_on_the_cluster_without_loss_or_duplicates(local_reference, tmp_path):
    out = tmp_path / "resumed"
    got = in_loopback_netns("driver_killed", out, tmp_path)
    assert got["killed_alive"], "the run ended before it could be killed: " + got["first_stderr"]
    assert got["returncode"] == 0, got["stderr"]
    done = got["done_before"]
    assert 2 <= done < 8
    # the second session ran exactly the documents the first did not commit
    assert got["documents_per_session"] == {"1": 0, "2": 8 - done}
    assert outputs(out) == outputs(local_reference[0])
    # every call is recorded once: the killed session's in-flight calls were never committed
    assert got["calls"] == local_reference[1]["calls"]


def test_an_unreachable_cluster_is_a_user_error(tmp_path):
    got = in_loopback_netns("unreachable", tmp_path / "x", tmp_path)
    assert got["returncode"] == 2 and "executor.address" in got["stderr"] and "Traceback" not in got["stderr"]
