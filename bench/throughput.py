"""Throughput benchmark: autodata's model runtime against a plain ``openai.AsyncOpenAI`` loop.

Both talk HTTP to ``autodata serve-sim`` (started here as a subprocess on 127.0.0.1 with a fixed
latency L, counted from each request's arrival), fire N distinct short chat requests with at most
C in flight, and are timed against the ideal wall time N*L/C. Each variant runs in its own fresh
Python process so its peak RSS is its own; the child prints one ``RESULT {json}`` line that the
parent collects.

Variants:
  plain           openai.AsyncOpenAI(max_retries=0) + asyncio.Semaphore(C), chat.completions.create
  plain-aiohttp   the same with the SDK's aiohttp transport (openai.DefaultAioHttpClient)
  autodata        ModelRuntime(config, cache=None): every call goes over HTTP (endpoint defaults,
                  so the transport is whatever ``http_transport`` defaults to)
  autodata-httpx  the same with ``http_transport: httpx`` (the SDK's default httpx2 transport)
  autodata-direct the same with ``http_transport: direct`` (aiohttp directly, no openai SDK)
  autodata-cache  ModelRuntime with a fresh temporary CallCache (cold: every call is a miss + write)
  autodata-warm   the same workload again on the cache filled by autodata-cache (should make 0 calls)
  autodata-nohttp ModelRuntime with an in-process fake backend (asyncio.sleep(L) + canned reply):
                  the runtime's own CPU cost per call, with no HTTP client underneath

Feeding (--feed, the same for every variant): ``gather`` starts all N calls at once (the default);
``window`` keeps at most 2*C calls pending (``autodata generate`` also keeps a bounded window).

Goals (from the issue): wall/ideal <= 1.10 and client CPU <= 1 ms per call for autodata.

    .venv/bin/python bench/throughput.py                       # N=10000, C=64, L=50 ms
    .venv/bin/python bench/throughput.py --n 10000 --concurrency 32 --latency-ms 100
    .venv/bin/python bench/throughput.py --repeats 3 --json runs/bench.json
    .venv/bin/python bench/throughput.py --profile             # + one cProfile'd run per variant
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ALL_VARIANTS = (
    "plain",
    "plain-aiohttp",
    "autodata",
    "autodata-httpx",
    "autodata-cache",
    "autodata-warm",
    "autodata-nohttp",
    "autodata-direct",
)
DEFAULT_VARIANTS = "plain,autodata,autodata-direct,autodata-cache,autodata-warm,autodata-nohttp"
MODEL = "sim-weak"
MAX_TOKENS = 64
GOAL_RATIO = 1.10
GOAL_CPU_MS = 1.0
URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)/v1")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# small helpers shared by parent and child


def prompt(i: int, prefix: str = "q") -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"[{prefix}{i}] Describe topic number {i} in two sentences."}]


def proc_cpu_s(pid: int) -> float | None:
    """utime+stime of a process in seconds, from /proc (Linux); None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------------------------------------
# child: one variant in a fresh process


class FakeBackend:
    """In-process stand-in for the HTTP transport: sleep L, return a canned OpenAI-shaped reply."""

    label = "fake"

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        text = "[simulated] " + "word " * 200
        self.data = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "system_fingerprint": "fake",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text[:250]}, "finish_reason": "length"}
            ],
            "usage": {"prompt_tokens": 16, "completion_tokens": MAX_TOKENS, "total_tokens": 16 + MAX_TOKENS},
        }

    async def send(self, body: dict[str, Any]) -> Any:
        from autodata.llm.backends import Reply

        await asyncio.sleep(self.latency_s)
        return Reply(data=self.data, headers={})

    async def aclose(self) -> None:
        return None


async def fire(n: int, prefix: str, one: Any, feed: str, concurrency: int) -> list[Any]:
    """All n calls at once (``gather``), or at most 2*C pending at a time (``window``: bounded, as generate's)."""
    if feed == "gather":
        return await asyncio.gather(*(one(i, prefix) for i in range(n)), return_exceptions=True)
    results: list[Any] = [None] * n
    room = asyncio.Semaphore(2 * concurrency)

    async def run(i: int) -> None:
        try:
            results[i] = await one(i, prefix)
        except Exception as exc:
            results[i] = exc
        finally:
            room.release()

    tasks = []
    for i in range(n):
        await room.acquire()
        tasks.append(asyncio.create_task(run(i)))
    await asyncio.gather(*tasks)
    return results


class TimedBackend:
    """Wraps a runtime backend to record how long each request takes once it has its slot."""

    def __init__(self, inner: Any, sink: list[float]) -> None:
        self.inner = inner
        self.label = inner.label
        self.sink = sink

    async def send(self, body: dict[str, Any]) -> Any:
        t0 = time.perf_counter()
        reply = await self.inner.send(body)
        self.sink.append(time.perf_counter() - t0)
        return reply

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _run_plain(args: argparse.Namespace) -> dict[str, Any]:
    import openai

    http_client = openai.DefaultAioHttpClient() if args.variant == "plain-aiohttp" else None
    client = openai.AsyncOpenAI(base_url=args.url, api_key="x", max_retries=0, http_client=http_client)
    sem = asyncio.Semaphore(args.concurrency)
    latencies: list[float] = []
    in_flight = peak = 0

    async def one(i: int, prefix: str) -> None:
        nonlocal in_flight, peak
        async with sem:
            in_flight += 1
            peak = max(peak, in_flight)
            t0 = time.perf_counter()
            try:
                await client.chat.completions.create(model=MODEL, messages=prompt(i, prefix), max_tokens=MAX_TOKENS)
            finally:
                in_flight -= 1
            latencies.append(time.perf_counter() - t0)

    async def batch(n: int, prefix: str) -> list[Any]:
        return await fire(n, prefix, one, args.feed, args.concurrency)

    try:
        return await _measure(args, batch, latencies, lambda: {"peak_in_flight": peak})
    finally:
        await client.close()


async def _run_autodata(args: argparse.Namespace) -> dict[str, Any]:
    from autodata.config import validate_config
    from autodata.llm.cache import CallCache
    from autodata.llm.runtime import ModelRuntime

    endpoint: dict[str, Any] = {"provider": "openai", "model": MODEL, "max_concurrency": args.concurrency}
    backends = None
    if args.variant == "autodata-nohttp":
        endpoint["base_url"] = "http://127.0.0.1:9/v1"  # never contacted
        backends = {"bench": [FakeBackend(args.latency_ms / 1000.0)]}
    else:
        endpoint["base_url"] = args.url
    if args.http_transport != "default":
        endpoint["http_transport"] = args.http_transport
    if args.variant == "autodata-direct":
        endpoint["http_transport"] = "direct"
    if args.variant == "autodata-httpx":
        endpoint["http_transport"] = "httpx"
    config = validate_config({"seed": 0, "models": {"bench": endpoint}, "cache": {"enabled": False}}, "<bench>")
    cache = CallCache(args.cache_path) if args.variant in ("autodata-cache", "autodata-warm") else None
    runtime = ModelRuntime(config, cache=cache, backends=backends)
    latencies: list[float] = []
    params = {"max_tokens": MAX_TOKENS}

    # time each HTTP request inside its slot (as the plain variant does), not the wait for a slot
    for replica in runtime.endpoint("bench").pool.replicas:
        replica.backend = TimedBackend(replica.backend, latencies)

    async def one(i: int, prefix: str) -> None:
        await runtime.complete("bench", prompt(i, prefix), params=params)

    async def batch(n: int, prefix: str) -> list[Any]:
        return await fire(n, prefix, one, args.feed, args.concurrency)

    before: dict[str, int] = {}

    def extra() -> dict[str, Any]:
        t = runtime.meter.totals
        stats = runtime.endpoints["bench"].stats()
        return {
            "peak_in_flight": stats["peak_in_flight"],
            "http_calls": t.calls - before["calls"],
            "cache_hits": t.cache_hits - before["hits"],
            "retries": t.retries - before["retries"],
            "window_shrinks": stats["window_shrinks"],
        }

    def mark() -> None:
        t = runtime.meter.totals
        before.update(calls=t.calls, hits=t.cache_hits, retries=t.retries)

    try:
        return await _measure(args, batch, latencies, extra, mark)
    finally:
        await runtime.aclose()


async def _measure(args, batch, latencies, extra, mark=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    if args.warmup:
        await batch(args.warmup, "w")
    latencies.clear()
    if mark is not None:
        mark()
    import gc

    gc.collect()
    rss_before = rss_mb()
    server0 = proc_cpu_s(args.server_pid) if args.server_pid else None
    profiler = None
    if args.profile_out:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = await batch(args.n, "q")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile_out)
    server1 = proc_cpu_s(args.server_pid) if args.server_pid else None
    errors = [r for r in results if isinstance(r, BaseException)]
    out: dict[str, Any] = {
        "variant": args.variant,
        "n": args.n,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "warmup": args.warmup,
        "loop": "uvloop" if args.uvloop else "asyncio",
        "feed": args.feed,
        "http_transport": args.http_transport,
        "wall_s": wall,
        "ideal_s": args.n * args.latency_ms / 1000.0 / args.concurrency,
        "cpu_s": cpu,
        "cpu_ms_per_call": cpu * 1000.0 / args.n,
        "client_cpu_util": cpu / wall if wall else float("nan"),
        "server_cpu_s": (server1 - server0) if server0 is not None and server1 is not None else None,
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "errors": len(errors),
        "first_error": repr(errors[0])[:300] if errors else None,
        "lat_p50_ms": percentile(latencies, 0.50) * 1000.0 if latencies else None,
        "lat_p99_ms": percentile(latencies, 0.99) * 1000.0 if latencies else None,
    }
    out["ratio"] = out["wall_s"] / out["ideal_s"]
    if out["server_cpu_s"] is not None:
        out["server_cpu_util"] = out["server_cpu_s"] / wall
    out.update(extra())
    return out


def child_main(args: argparse.Namespace) -> None:
    runner = _run_plain if args.variant.startswith("plain") else _run_autodata
    if args.uvloop:
        import uvloop

        result = uvloop.run(runner(args))
    else:
        result = asyncio.run(runner(args))
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# parent: the server, the children, the table


class SimServer:
    """``autodata serve-sim --port 0`` in a subprocess; always killed by ``stop()``."""

    def __init__(self, latency_ms: float, startup_timeout: float = 30.0, extra: list[str] | None = None) -> None:
        exe = Path(sys.executable).with_name("autodata")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "autodata"]
        cmd += ["serve-sim", "--host", "127.0.0.1", "--port", "0", "--latency-ms", f"{latency_ms:g}", "--seed", "0"]
        cmd += extra or []
        self.cmd = cmd
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.pid = self.proc.pid
        try:
            self.port = self._read_port(startup_timeout)
            self.url = f"http://127.0.0.1:{self.port}/v1"
            self._wait_health(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = b""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
                m = URL_RE.search(seen.decode(errors="replace"))
                if m:
                    # keep draining stdout so the server can never block on a full pipe
                    threading.Thread(target=self._drain, daemon=True).start()
                    return int(m.group(1))
        finally:
            sel.close()
        raise RuntimeError(f"serve-sim did not print its URL within {timeout:g}s; stdout: {seen!r}; {self._err()}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        try:
            while os.read(self.proc.stdout.fileno(), 65536):
                pass
        except OSError:
            pass

    def _wait_health(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve-sim exited with code {self.proc.returncode}; {self._err()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"serve-sim /health did not answer within {timeout:g}s: {last}")

    def _err(self) -> str:
        self.stderr.seek(0)
        return "stderr: " + self.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.stderr.close()


def keepalive_check(port: int, latency_ms: float, requests: int = 6) -> list[float]:
    """Sequential requests on one keep-alive connection; ms each. All should be about L."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    try:
        for i in range(requests):
            body = json.dumps({"model": MODEL, "messages": prompt(i, "k"), "max_tokens": MAX_TOKENS})
            t0 = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t0) * 1000.0)
            if resp.status != 200:
                raise RuntimeError(f"serve-sim answered HTTP {resp.status}")
    finally:
        conn.close()
    return out


def run_child(
    args: argparse.Namespace, variant: str, server: SimServer, cache_path: str, profile_out: str | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--variant",
        variant,
        "--url",
        server.url,
        "--server-pid",
        str(server.pid),
        "--n",
        str(args.n),
        "--concurrency",
        str(args.concurrency),
        "--latency-ms",
        f"{args.latency_ms:g}",
        "--warmup",
        str(args.warmup),
        "--cache-path",
        cache_path,
    ]
    if args.uvloop:
        cmd.append("--uvloop")
    cmd += ["--feed", args.feed, "--http-transport", args.http_transport]
    if profile_out:
        cmd += ["--profile-out", profile_out]
    ideal = args.n * args.latency_ms / 1000.0 / args.concurrency
    timeout = args.child_timeout or max(120.0, 30.0 * ideal)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{variant}: no result within {timeout:g}s (raise --child-timeout)") from None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{variant}: child exited {proc.returncode} without a result\n{proc.stderr[-3000:]}")


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import openai

    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return {
        "commit": rev or "unknown",
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "openai": openai.__version__,
    }


NUMERIC = (
    "wall_s",
    "ratio",
    "cpu_ms_per_call",
    "client_cpu_util",
    "server_cpu_util",
    "peak_rss_mb",
    "rss_before_mb",
    "lat_p50_ms",
    "lat_p99_ms",
    "http_calls",
    "errors",
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric field over the repeats of one variant."""
    out = dict(runs[0])
    for key in NUMERIC:
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            out[key] = statistics.median(vals)
    out["repeats"] = len(runs)
    out["wall_s_all"] = [round(r["wall_s"], 3) for r in runs]
    return out


def fmt(v: Any, spec: str) -> str:
    if v is None:
        width = re.match(r"[<>^]?(\d*)", spec)
        return "-".rjust(int(width.group(1))) if width and width.group(1) else "-"
    return format(v, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'variant':<24}{'N':>7}{'C':>5}{'L ms':>6}{'wall s':>9}{'ideal s':>9}{'ratio':>7}"
        f"{'CPU ms/call':>12}{'client CPU':>11}{'server CPU':>11}{'peak RSS MB':>12}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'calls':>7}{'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        calls = r.get("http_calls", r["n"])
        print(
            f"{r['variant']:<24}{r['n']:>7}{r['concurrency']:>5}{r['latency_ms']:>6g}{r['wall_s']:>9.2f}"
            f"{r['ideal_s']:>9.2f}{r['ratio']:>7.3f}{r['cpu_ms_per_call']:>12.3f}"
            f"{r['client_cpu_util']:>10.0%} {fmt(r.get('server_cpu_util'), '>10.0%')} {r['peak_rss_mb']:>11.1f}"
            f"{fmt(r.get('lat_p50_ms'), '>8.1f')}{fmt(r.get('lat_p99_ms'), '>8.1f')}{calls:>7g}{r['errors']:>7g}"
        )


def print_verdict(rows: dict[str, dict[str, Any]]) -> None:
    plain = rows.get("plain")
    print()
    for name, r in rows.items():
        if name.startswith("plain") or name == "autodata-warm":
            continue
        ok_ratio = r["ratio"] <= GOAL_RATIO
        ok_cpu = r["cpu_ms_per_call"] <= GOAL_CPU_MS
        line = (
            f"{name}: wall/ideal {r['ratio']:.3f} (goal <= {GOAL_RATIO}: {'MET' if ok_ratio else 'NOT MET'}); "
            f"CPU {r['cpu_ms_per_call']:.3f} ms/call (goal <= {GOAL_CPU_MS}: {'MET' if ok_cpu else 'NOT MET'})"
        )
        if plain and name != "autodata-nohttp":
            line += (
                f"; vs plain: wall x{r['wall_s'] / plain['wall_s']:.3f}, "
                f"CPU/call x{r['cpu_ms_per_call'] / plain['cpu_ms_per_call']:.2f}"
            )
        print(line)
    warm = rows.get("autodata-warm")
    if warm:
        print(
            f"autodata-warm: {warm['http_calls']:g} HTTP calls, {warm.get('cache_hits', 0):g} cache hits, "
            f"wall {warm['wall_s']:.3f} s, CPU {warm['cpu_ms_per_call']:.3f} ms/call"
        )
    for name, r in rows.items():
        su = r.get("server_cpu_util")
        if name != "autodata-nohttp" and su is not None and su >= 0.9:
            print(
                f"note: during {name} the serve-sim process used {su:.0%} of one core: the single-threaded "
                "server is (near) saturated and is the bottleneck, not the client"
            )
        if su is not None and name != "autodata-nohttp" and su + r["client_cpu_util"] >= 1.8:
            print(
                f"note: during {name} client + server used {su + r['client_cpu_util']:.0%} CPU of "
                f"{os.cpu_count()} cores: the machine itself is (near) saturated"
            )


PROFILE_GROUPS = (  # (label, substrings of the file name or function) for the self-time summary
    ("autodata (src)", ("/src/autodata/",)),
    ("bench harness", ("bench/throughput",)),
    ("openai SDK", ("site-packages/openai/",)),
    ("httpx2/httpcore2", ("site-packages/httpx2/", "site-packages/httpcore2/")),
    ("aiohttp/yarl/multidict", ("site-packages/aiohttp/", "site-packages/yarl/", "site-packages/multidict/")),
    ("pydantic", ("site-packages/pydantic",)),
    ("sqlite", ("sqlite3.",)),
    ("epoll wait (includes idle time)", ("select.epoll",)),
    ("asyncio loop", ("asyncio/", "selectors.py", "_contextvars")),
    ("json", ("/json/",)),
    ("copy (deepcopy)", ("/copy.py",)),
)


def profile_groups(stats: Any) -> list[tuple[str, float]]:
    """Self time summed by package; builtins land in 'other' (mostly called by the package above them)."""
    totals: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.items():
        where = f"{file} {name}"
        label = next((lab for lab, keys in PROFILE_GROUPS if any(k in where for k in keys)), "other (builtins, ...)")
        totals[label] = totals.get(label, 0.0) + tt
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)


def print_profile(path: str, n: int, top: int) -> None:
    import pstats

    st = pstats.Stats(path)
    groups = profile_groups(st.stats)  # type: ignore[attr-defined]
    total = sum(v for _k, v in groups) or 1.0
    print(f"\n--- self time by package: {total * 1000 / n:.3f} profiled ms per logical call in all ---")
    for label, v in groups:
        print(f"{v * 1000 / n:>12.4f} ms/call {100 * v / total:5.1f}%  {label}")
    for key in ("cumulative", "tottime"):
        print(f"\n--- top {top} by {key} (ms per logical call = seconds * 1000 / {n}) ---")
        st = pstats.Stats(path)
        st.sort_stats(key)
        rows = []
        for func, (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
            rows.append((ct if key == "cumulative" else tt, tt, ct, nc, func))
        rows.sort(key=lambda r: r[0], reverse=True)
        print(f"{'cum ms/call':>12}{'self ms/call':>13}{'ncalls':>10}  function")
        for _sort, tt, ct, nc, (file, line, name) in rows[:top]:
            short = file
            for marker in ("site-packages/", "src/", "lib/python3"):
                if marker in file:
                    short = file.split(marker, 1)[1]
                    break
            print(f"{ct * 1000 / n:>12.4f}{tt * 1000 / n:>13.4f}{nc:>10}  {short}:{line}({name})")


def parent_main(args: argparse.Namespace) -> None:
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in ALL_VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; choose from {', '.join(ALL_VARIANTS)}")
    if "autodata-warm" in variants and "autodata-cache" not in variants:
        raise SystemExit("autodata-warm needs autodata-cache before it (it reuses the cache that run fills)")
    if "autodata-warm" in variants and variants.index("autodata-warm") < variants.index("autodata-cache"):
        raise SystemExit("list autodata-cache before autodata-warm")
    info = machine_info()
    print(
        f"machine: {info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}, openai {info['openai']}, "
        f"autodata at {info['commit']}; "
        f"client loop: {'uvloop' if args.uvloop else 'asyncio (default)'}"
    )
    print(
        f"workload: N={args.n} distinct chat requests, C={args.concurrency}, L={args.latency_ms:g} ms, "
        f"max_tokens={MAX_TOKENS}, warmup={args.warmup}, repeats={args.repeats}, feed={args.feed}, "
        f"http_transport={args.http_transport}; "
        f"ideal wall N*L/C = {args.n * args.latency_ms / 1000 / args.concurrency:.2f} s"
    )
    tmp = tempfile.mkdtemp(prefix="autodata-bench-")
    try:
        run_all(args, variants, info, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(args: argparse.Namespace, variants: list[str], info: dict[str, Any], tmp: str) -> None:
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    profiles: dict[str, str] = {}
    server = SimServer(args.latency_ms)
    try:
        print(f"server: pid {server.pid}, {server.url}  ({' '.join(server.cmd)})", flush=True)
        ka = keepalive_check(server.port, args.latency_ms)
        later = statistics.median(ka[1:])
        print(
            f"server keep-alive check (one connection, sequential): first {ka[0]:.1f} ms, "
            f"then median {later:.1f} ms (L = {args.latency_ms:g} ms)"
        )
        if later > args.latency_ms + 20:
            print(
                f"  WARNING: requests on a reused connection take {later - args.latency_ms:.0f} ms more than L: "
                "the server's responses are held back (Nagle + delayed ACK: no TCP_NODELAY on its sockets)"
            )
        print(flush=True)
        for rep in range(args.repeats):
            cache_path = os.path.join(tmp, f"calls-{rep}.sqlite")
            for v in variants:
                r = run_child(args, v, server, cache_path)
                runs[v].append(r)
                print(
                    f"  repeat {rep + 1}/{args.repeats} {v:<24} wall {r['wall_s']:7.2f} s  ratio {r['ratio']:.3f}  "
                    f"CPU {r['cpu_ms_per_call']:.3f} ms/call  server CPU {fmt(r.get('server_cpu_util'), '.0%')}  "
                    f"errors {r['errors']}" + (f"  first error: {r['first_error']}" if r["first_error"] else ""),
                    flush=True,
                )
        if args.profile:
            for v in [v for v in variants if v != "autodata-warm"]:
                path = os.path.join(tmp, f"{v}.prof")
                cache_path = os.path.join(tmp, "calls-profile.sqlite")
                r = run_child(args, v, server, cache_path, profile_out=path)
                profiles[v] = path
                print(
                    f"  profiled {v:<24} wall {r['wall_s']:7.2f} s  CPU {r['cpu_ms_per_call']:.3f} ms/call "
                    "(cProfile inflates both; read the shares, not the absolute figures)",
                    flush=True,
                )
    finally:
        server.stop()
    summary = {v: summarise(rs) for v, rs in runs.items()}
    print()
    print_table(list(summary.values()))
    print_verdict(summary)
    for v, path in profiles.items():
        print(f"\n=== cProfile of {v} (N={args.n}) ===")
        print_profile(path, args.n, args.profile_top)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "args": {k: v for k, v in vars(args).items() if k not in ("variant",)},
            "server_keepalive_ms": ka,
            "summary": summary,
            "runs": runs,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"\nresults written to {args.json}")
    if args.keep_profiles and profiles:
        dest = Path(args.keep_profiles)
        dest.mkdir(parents=True, exist_ok=True)
        for v, path in profiles.items():
            shutil.copy(path, dest / f"{v}.prof")
        print(f"profiles copied to {dest}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000, help="requests per run (default 10000)")
    p.add_argument("--concurrency", "-c", type=int, default=64, help="max requests in flight (default 64)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="serve-sim latency per answer (default 50)")
    p.add_argument("--repeats", type=int, default=1, help="runs per variant; the table shows medians")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls before each run (default: C)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma list from {', '.join(ALL_VARIANTS)}")
    p.add_argument("--uvloop", action="store_true", help="run every client variant on uvloop")
    p.add_argument(
        "--http-transport",
        choices=("default", "aiohttp", "httpx", "direct"),
        default="default",
        help="endpoint http_transport for the autodata, autodata-cache and autodata-warm variants",
    )
    p.add_argument(
        "--feed", choices=("gather", "window"), default="gather", help="all N calls at once, or 2*C pending at most"
    )
    p.add_argument("--profile", action="store_true", help="after the timed runs, one cProfile'd run per variant")
    p.add_argument("--profile-top", type=int, default=30, help="rows per profile listing")
    p.add_argument("--keep-profiles", metavar="DIR", help="copy the .prof files here")
    p.add_argument("--json", metavar="PATH", help="write all results to this JSON file")
    p.add_argument(
        "--child-timeout", type=float, default=None, help="seconds per variant run (default max(120, 30*ideal))"
    )
    # internal: the child side
    p.add_argument("--variant", choices=ALL_VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--cache-path", help=argparse.SUPPRESS)
    p.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.warmup is None:
        args.warmup = args.concurrency
    if args.n < 1 or args.concurrency < 1 or args.latency_ms <= 0 or args.repeats < 1:
        p.error("--n, --concurrency and --repeats must be >= 1 and --latency-ms > 0")
    if args.variant:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
