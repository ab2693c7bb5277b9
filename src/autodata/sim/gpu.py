"""A capacity model for ``serve-sim``: answers take the time a GPU inference server would need.

Without it serve-sim answers every request after a fixed latency, however many are in flight,
which no real server does. With ``--gpu-model NAME`` (or ``--gpu-config FILE``) each request
goes through a simulated engine shaped like vLLM's scheduler:

- **Continuous batching** with at most ``max_batch`` sequences running (vLLM's ``max_num_seqs``);
  further requests wait in a FIFO queue, as ``vllm:num_requests_waiting`` counts them.
- **Prefill** costs ``prefill_s_per_token`` per prompt token that the prefix cache did not hold;
  the engine spends its time on prefill first (decodes stall meanwhile, as a prefill step delays
  every running sequence's next token).
- **Decode**: every running sequence gains one token per engine step, and a step lasts
  ``step_base_s + step_per_seq_s * running``: the weights are read once per step whatever the
  batch (the base), each sequence adds its KV-cache reads. Throughput therefore grows with the
  batch and peaks at ``max_batch / step_s(max_batch)`` tokens per second.
- **Automatic prefix cache**, hashed by blocks as vLLM's APC does (docs.vllm.ai, "Automatic Prefix
  Caching": each block of ``block_tokens`` tokens is identified by the hash of its parent block's
  hash and its own tokens, so a hit on block i implies the whole prefix up to it): blocks of a
  prompt already computed skip their prefill; the cache holds ``cache_blocks`` blocks and evicts
  the least recently used. Blocks enter the cache when their prefill is done. Tokens here are the
  simulator's: 4 characters of the chat-rendered prompt, the rule ``llm/tokens.py`` counts by.
- ``n`` > 1 (parallel sampling): one prefill, then ``n`` sequences decoding side by side, each
  counting against ``max_batch`` (vLLM schedules the n sequences of a request the same way).

Time runs ``1 / time_scale`` times faster than the wall clock (``time_scale`` = wall seconds per
simulated second), so a benchmark can replay hours of GPU time in minutes; every figure the engine
reports (busy time, work, throughput) is in simulated seconds. Answers are the ladder's, unchanged:
the engine only decides when they are sent.

Not modelled: KV-cache memory as a limit on the batch (preemption), chunked-prefill token budgets,
speculative decoding, context length slowing a step. The presets below give the shape of real
deployments; their numbers are estimates from public hardware and model figures, not measurements.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from autodata.errors import ConfigError

CHARS_PER_TOKEN = 4  # the simulator's tokens (llm/tokens.py)


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """The shape of one deployment. Times in (simulated) seconds.

    ``max_batch``: sequences running at once (vLLM ``--max-num-seqs``). ``prefill_s_per_token``:
    time per uncached prompt token (compute-bound: 2 x parameters FLOP per token over the GPUs'
    usable FLOP/s). ``step_base_s``: one decode step at batch 1 (memory-bound: the weights' bytes
    over HBM bandwidth, plus tensor-parallel communication). ``step_per_seq_s``: what each running
    sequence adds to a step (its KV cache read at a typical context). ``cache_blocks``: prefix-cache
    capacity in blocks of ``block_tokens`` tokens (the KV memory left after the weights).
    """

    name: str
    max_batch: int
    prefill_s_per_token: float
    step_base_s: float
    step_per_seq_s: float
    cache_blocks: int
    block_tokens: int = 16
    description: str = ""

    def __post_init__(self) -> None:
        problems = []
        if self.max_batch < 1:
            problems.append("max_batch: must be at least 1")
        if self.block_tokens < 1:
            problems.append("block_tokens: must be at least 1")
        if self.cache_blocks < 0:
            problems.append("cache_blocks: must be 0 (no prefix cache) or more")
        for key in ("prefill_s_per_token", "step_base_s", "step_per_seq_s"):
            if getattr(self, key) < 0:
                problems.append(f"{key}: must not be negative")
        if self.step_base_s + self.step_per_seq_s <= 0:
            problems.append("step_base_s, step_per_seq_s: a decode step must take some time")
        if problems:
            raise ConfigError(f"GPU model {self.name!r} is not valid", details=problems)

    def step_s(self, running: int) -> float:
        """Duration of one decode step with ``running`` sequences in the batch (seconds)."""
        return self.step_base_s + self.step_per_seq_s * running

    def prefill_s(self, tokens: float) -> float:
        """Seconds to prefill ``tokens`` prompt tokens (those the prefix cache did not hold)."""
        return tokens * self.prefill_s_per_token

    @property
    def peak_decode_tokens_per_s(self) -> float:
        """Decode throughput with a full batch: the most this deployment can generate per second."""
        return self.max_batch / self.step_s(self.max_batch)

    def work_s(self, prefill_tokens: float, decode_tokens: float) -> float:
        """Seconds this deployment needs at peak for that much work: the benchmarks' ideal."""
        return self.prefill_s(prefill_tokens) + decode_tokens / self.peak_decode_tokens_per_s


# Presets. Sources for the shapes: model sizes and attention layouts from the models' published
# configs (Llama 3.1 8B: 32 layers, 8 KV heads of 128; Qwen2.5 32B: 64 layers, 8 KV heads of 128;
# Llama 3.1 70B: 80 layers, 8 KV heads of 128), H100 SXM 80 GB from NVIDIA's datasheet (3.35 TB/s
# HBM3, 989 TFLOP/s dense BF16), vLLM's scheduler limits from its engine arguments (max_num_seqs
# 256, KV blocks of 16 tokens, 90 % of GPU memory for weights + KV). Prefill assumes about half of
# peak FLOP/s (40 % at tensor parallel 8); a decode step's base is the weights over HBM bandwidth
# plus some overhead; per sequence, the KV cache of a ~1,500-token context over HBM bandwidth.
PRESETS: dict[str, GpuSpec] = {
    spec.name: spec
    for spec in (
        GpuSpec(
            "llama-8b-1xh100",
            max_batch=256,
            prefill_s_per_token=1 / 30_000,  # 16 GFLOP/token at ~50 % of 989 TFLOP/s
            step_base_s=0.006,  # 16 GB of weights / 3.35 TB/s = 4.8 ms, + overhead
            step_per_seq_s=0.00006,  # 128 KiB KV/token x 1,500 tokens / 3.35 TB/s
            cache_blocks=27_000,  # (72 - 16) GB / 128 KiB per token / 16 tokens per block
            description="an 8B model (BF16) on one H100 80 GB",
        ),
        GpuSpec(
            "qwen-32b-2xh100",
            max_batch=256,
            prefill_s_per_token=1 / 15_000,  # 64 GFLOP/token at ~50 % of 2 x 989 TFLOP/s
            step_base_s=0.011,  # 64 GB / 6.7 TB/s = 9.6 ms, + tensor-parallel all-reduce
            step_per_seq_s=0.00006,  # 256 KiB KV/token x 1,500 tokens / 6.7 TB/s
            cache_blocks=20_000,  # (144 - 64) GB / 256 KiB / 16
            description="a 32B model (BF16) on two H100 80 GB, tensor parallel 2",
        ),
        GpuSpec(
            "llama-70b-8xh100",
            max_batch=256,
            prefill_s_per_token=1 / 22_000,  # 140 GFLOP/token at ~40 % of 8 x 989 TFLOP/s
            step_base_s=0.009,  # 140 GB / 26.8 TB/s = 5.2 ms, + tensor-parallel all-reduce
            step_per_seq_s=0.00002,  # 320 KiB KV/token x 1,500 tokens / 26.8 TB/s
            cache_blocks=85_000,  # (576 - 140) GB / 320 KiB / 16
            description="a 70B model (BF16) on eight H100 80 GB, tensor parallel 8",
        ),
        GpuSpec(
            "tiny",
            max_batch=4,
            prefill_s_per_token=0.001,
            step_base_s=0.01,
            step_per_seq_s=0.0025,
            cache_blocks=64,
            block_tokens=4,
            description="a toy for tests: a batch of 4, a 64-block cache",
        ),
    )
}


def load_spec(name: str | None = None, path: str | Path | None = None) -> GpuSpec:
    """A preset by name, or a YAML file of ``GpuSpec`` fields (``base: PRESET`` fills the rest).

    Raises :class:`ConfigError` naming the preset, key or file at fault.
    """
    if path is None:
        if name not in PRESETS:
            raise ConfigError(f"unknown GPU model {name!r}; presets: {', '.join(PRESETS)}")
        return PRESETS[name]
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read GPU config {p}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"GPU config {p}: expected a mapping of {', '.join(f.name for f in fields(GpuSpec))}")
    base_name = data.pop("base", name)
    known = {f.name for f in fields(GpuSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"GPU config {p}: unknown keys {', '.join(unknown)}; allowed: base, {', '.join(sorted(known))}"
        )
    if base_name is not None:
        base = load_spec(base_name)
        return replace(base, **{"name": f"{base.name}+{p.stem}", **data})
    missing = sorted(
        k
        for k in ("max_batch", "prefill_s_per_token", "step_base_s", "step_per_seq_s", "cache_blocks")
        if k not in data
    )
    if missing:
        raise ConfigError(f"GPU config {p}: missing keys {', '.join(missing)} (or name a preset with base:)")
    return GpuSpec(**{"name": p.stem, **data})


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The prompt as a chat template would lay it out: role markers, then contents, in order."""
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(f"<|{m.get('role')}|>{content if isinstance(content, str) else ''}")
    return "".join(parts)


class PrefixCache:
    """Block-hashed prefix cache with LRU eviction (vLLM APC's scheme, simplified: no ref counts)."""

    def __init__(self, capacity_blocks: int, block_tokens: int) -> None:
        self.capacity = capacity_blocks
        self.block_chars = block_tokens * CHARS_PER_TOKEN
        self.block_tokens = block_tokens
        self._blocks: collections.OrderedDict[int, None] = collections.OrderedDict()

    def block_hashes(self, text: str) -> list[int]:
        """Chained hashes of the full blocks of ``text`` (a partial last block is never cached)."""
        out, parent = [], 0
        for i in range(0, len(text) - self.block_chars + 1, self.block_chars):
            parent = hash((parent, text[i : i + self.block_chars]))
            out.append(parent)
        return out

    def hit_blocks(self, hashes: list[int]) -> int:
        """How many leading blocks are cached (each hit is touched, as most recently used)."""
        n = 0
        for h in hashes:
            if h not in self._blocks:
                break
            self._blocks.move_to_end(h)
            n += 1
        return n

    def insert(self, hashes: list[int]) -> None:
        if not self.capacity:
            return
        for h in hashes:
            self._blocks[h] = None
            self._blocks.move_to_end(h)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)

    def __len__(self) -> int:
        return len(self._blocks)


@dataclass(slots=True, eq=False)
class _Request:
    hashes: list[int]
    prompt_tokens: int
    outputs: list[int]  # tokens to generate per sequence (n of them)
    done: asyncio.Future[None]
    prefill_left_s: float = 0.0
    seqs_left: int = 0


@dataclass(slots=True, eq=False)
class _Seq:
    req: _Request
    left: float  # tokens still to generate


@dataclass(slots=True)
class Counters:
    """Totals since start; tokens are the simulator's, times simulated seconds."""

    requests: int = 0
    prompt_tokens: int = 0  # vllm:prompt_tokens_total
    prefix_queries: int = 0  # vllm:prefix_cache_queries_total (tokens looked up)
    prefix_hits: int = 0  # vllm:prefix_cache_hits_total (tokens found)
    prefill_tokens: int = 0  # prompt tokens actually computed (queries - hits)
    generation_tokens: int = 0  # vllm:generation_tokens_total
    busy_s: float = 0.0  # time with anything running
    first_arrival_s: float | None = None
    last_done_s: float | None = None


class GpuEngine:
    """The simulated engine of one server. ``await generate(...)`` returns when the request is done."""

    def __init__(self, spec: GpuSpec, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ConfigError("time_scale: must be positive (wall seconds per simulated second)")
        self.spec = spec
        self.scale = time_scale
        self.cache = PrefixCache(spec.cache_blocks, spec.block_tokens)
        self.counters = Counters()
        self.waiting: collections.deque[_Request] = collections.deque()
        self.prefilling: collections.deque[_Request] = collections.deque()
        self.decoding: list[_Seq] = []
        self._running_seqs = 0  # sequences admitted: prefilling requests' n plus decoding ones
        self._last: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        """Simulated seconds (the event loop's clock divided by the time scale)."""
        return asyncio.get_running_loop().time() / self.scale

    # ------------------------------------------------------------------ the API

    async def generate(self, prompt: str, prompt_tokens: int, outputs: list[int]) -> None:
        """Queue one request (``outputs``: tokens per sequence, n = its length) and wait for it."""
        done = self.submit(prompt, prompt_tokens, outputs, self.now())
        self._schedule()
        await done

    def submit(self, prompt: str, prompt_tokens: int, outputs: list[int], now: float) -> asyncio.Future[None]:
        """Queue a request arriving at ``now`` (simulated seconds); the future is set when it is done.

        ``generate`` is this plus a timer on the event loop; tests drive ``submit`` and ``advance_to``
        with their own clock.
        """
        self._advance(now)
        c = self.counters
        if c.first_arrival_s is None:
            c.first_arrival_s = now
        c.requests += 1
        req = _Request(self.cache.block_hashes(prompt), prompt_tokens, [max(0, o) for o in outputs] or [0],
                       asyncio.get_running_loop().create_future())  # fmt: skip
        self.waiting.append(req)
        self._admit()
        return req.done

    def advance_to(self, now: float) -> None:
        """Play the engine forward to ``now`` (simulated seconds) and admit what fits."""
        self._advance(now)
        self._admit()

    @property
    def running(self) -> int:
        """Sequences in the batch (vllm:num_requests_running counts requests; n = 1 makes them equal)."""
        return self._running_seqs

    def snapshot(self, now: float | None = None) -> dict[str, float]:
        """The engine's state and totals, brought up to ``now`` (default: the loop's clock)."""
        if now is None:
            now = self.now()
            self.advance_to(now)
            self._schedule()
        else:
            self.advance_to(now)
        c = self.counters
        span = (now - c.first_arrival_s) if c.first_arrival_s is not None else 0.0
        return {
            "running": self._running_seqs,
            "waiting": len(self.waiting),
            "requests": c.requests,
            "prompt_tokens": c.prompt_tokens,
            "prefix_queries": c.prefix_queries,
            "prefix_hits": c.prefix_hits,
            "prefill_tokens": c.prefill_tokens,
            "generation_tokens": c.generation_tokens,
            "busy_s": c.busy_s,
            "span_s": span,
            "busy_fraction": c.busy_s / span if span > 0 else 0.0,
            # from the first request in to the last answer out: the stretch this server had work to do
            "active_s": (c.last_done_s - c.first_arrival_s)
            if c.last_done_s is not None and c.first_arrival_s is not None
            else 0.0,
            "work_s": self.spec.work_s(c.prefill_tokens, c.generation_tokens),
            "cache_blocks_used": len(self.cache),
        }

    # ------------------------------------------------------------------ the engine

    def _admit(self) -> None:
        spec = self.spec
        while self.waiting:
            req = self.waiting[0]
            n = len(req.outputs)
            if self._running_seqs and self._running_seqs + n > spec.max_batch:
                return
            self.waiting.popleft()
            self._running_seqs += n
            hit_tokens = min(req.prompt_tokens, self.cache.hit_blocks(req.hashes) * spec.block_tokens)
            computed = req.prompt_tokens - hit_tokens
            c = self.counters
            c.prompt_tokens += req.prompt_tokens
            c.prefix_queries += req.prompt_tokens
            c.prefix_hits += hit_tokens
            c.prefill_tokens += computed
            req.prefill_left_s = spec.prefill_s(computed)
            self.prefilling.append(req)

    def _advance(self, now: float) -> None:
        """Play the engine forward to ``now`` (simulated seconds): prefill first, then decode steps."""
        if self._last is None:
            self._last = now
            return
        dt = now - self._last
        if dt <= 0:
            return
        self._last = now
        c = self.counters
        while dt > 1e-12:
            if self.prefilling:
                req = self.prefilling[0]
                use = min(dt, req.prefill_left_s)
                req.prefill_left_s -= use
                dt -= use
                c.busy_s += use
                if req.prefill_left_s <= 1e-12:
                    self.prefilling.popleft()
                    self.cache.insert(req.hashes)
                    self._start_decoding(req, now - dt)
                continue
            if not self.decoding:
                break
            step, until_done = self._decode_timing()
            use = min(dt, until_done)
            tokens = use / step
            dt -= use
            c.busy_s += use
            still = []
            for s in self.decoding:
                s.left -= tokens
                if s.left <= 1e-9:
                    self._seq_done(s.req, now - dt)
                else:
                    still.append(s)
            self.decoding = still
            self._admit()

    def _start_decoding(self, req: _Request, at: float) -> None:
        req.seqs_left = len(req.outputs)
        for out in req.outputs:
            self.counters.generation_tokens += out
            if out > 0:
                self.decoding.append(_Seq(req, float(out)))
            else:
                self._seq_done(req, at)

    def _seq_done(self, req: _Request, at: float) -> None:
        self._running_seqs -= 1
        req.seqs_left -= 1
        if req.seqs_left == 0:
            self.counters.last_done_s = at
            if not req.done.done():
                req.done.set_result(None)

    def _next_event_in(self) -> float | None:
        if self.prefilling:
            return self.prefilling[0].prefill_left_s
        if self.decoding:
            return self._decode_timing()[1]
        return None

    def _decode_timing(self) -> tuple[float, float]:
        """(seconds per decode step with the batch as it is, seconds until its shortest sequence is done)."""
        step = self.spec.step_s(len(self.decoding))
        return step, min(s.left for s in self.decoding) * step

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wait = self._next_event_in()
        if wait is None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + wait * self.scale, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._advance(self.now())
        self._admit()
        self._schedule()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def metrics_text(engine: GpuEngine, model_name: str = "serve-sim") -> str:
    """Prometheus text exposition, named as vLLM names them (docs.vllm.ai, "Production Metrics").

    vLLM's names: ``vllm:num_requests_running``, ``vllm:num_requests_waiting`` (gauges),
    ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``, ``vllm:prefix_cache_queries_total``,
    ``vllm:prefix_cache_hits_total`` (counters, in tokens; hit rate = hits / queries). serve-sim adds
    its own, under ``serve_sim:``: busy seconds, the span since the first request, the busy fraction,
    the work done in seconds at peak throughput, and the spec's peak figures.
    """
    s = engine.snapshot()
    label = f'{{model_name="{model_name}"}}'
    rows = [
        ("vllm:num_requests_running", "gauge", "Sequences in the running batch.", s["running"]),
        ("vllm:num_requests_waiting", "gauge", "Requests waiting to be scheduled.", s["waiting"]),
        ("vllm:prompt_tokens_total", "counter", "Prompt tokens received.", s["prompt_tokens"]),
        ("vllm:generation_tokens_total", "counter", "Tokens generated.", s["generation_tokens"]),
        ("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
         s["prefix_queries"]),
        ("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", s["prefix_hits"]),
        ("vllm:request_success_total", "counter", "Requests received.", s["requests"]),
        ("serve_sim:prefill_tokens_total", "counter", "Prompt tokens computed (not found in the cache).",
         s["prefill_tokens"]),
        ("serve_sim:busy_seconds_total", "counter", "Simulated seconds with work on the GPU.", s["busy_s"]),
        ("serve_sim:span_seconds", "gauge", "Simulated seconds since the first request.", s["span_s"]),
        ("serve_sim:busy_fraction", "gauge", "busy_seconds_total / span_seconds.", s["busy_fraction"]),
        ("serve_sim:active_seconds", "gauge", "Simulated seconds from the first request in to the last answer out.",
         s["active_s"]),
        ("serve_sim:work_seconds_total", "counter", "Seconds the work done would take at peak throughput.",
         s["work_s"]),
        ("serve_sim:peak_decode_tokens_per_second", "gauge", "Decode throughput with a full batch.",
         engine.spec.peak_decode_tokens_per_s),
        ("serve_sim:max_batch", "gauge", "Most sequences running at once.", engine.spec.max_batch),
        ("serve_sim:time_scale", "gauge", "Wall seconds per simulated second.", engine.scale),
    ]  # fmt: skip
    out = []
    for name, kind, doc, value in rows:
        out += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name}{label} {float(value)!r}"]
    return "\n".join(out) + "\n"


def spec_summary(spec: GpuSpec) -> dict[str, Any]:
    """The spec as JSON, with its derived peak throughput."""
    return {**asdict(spec), "peak_decode_tokens_per_s": round(spec.peak_decode_tokens_per_s, 1)}
