"""Where the client CPU per call goes: the same workload over several HTTP transports.

A companion to ``throughput.py`` (it reuses its serve-sim launcher). Each transport sends N distinct
short chat requests to serve-sim with C in flight (asyncio.Semaphore) and reports client CPU ms per
call and wall/ideal. None of these is autodata's runtime: the point is to see how much of the
per-call cost is the HTTP stack underneath it, and what a leaner transport would cost.

  sdk-create    openai.AsyncOpenAI.chat.completions.create (parsed ChatCompletion)
  sdk-raw       ...with_raw_response.create + json.loads(content)    (what OpenAIBackend does today)
  sdk-post      AsyncOpenAI.post("/chat/completions", body=dict, cast_to=httpx2.Response): no
                TypedDict transform, no response model
  sdk-post-aio  the same over the SDK's aiohttp transport (openai.DefaultAioHttpClient)
  httpx2        httpx2.AsyncClient.post(content=json bytes) + json.loads: no openai layer at all
  httpx2-x8     the same spread over 8 clients of C/8 connections (the pool scans every
                connection on each request; smaller pools scan less)
  aiohttp       aiohttp.ClientSession(TCPConnector(limit=C)).post(data=json bytes) + json.loads
  raw           a minimal keep-alive HTTP/1.1 client on asyncio streams (C connections, Content-Length
                framing only): a floor for what a Python transport can cost, not production code

    .venv/bin/python bench/transport_probe.py --n 5000
    .venv/bin/python bench/transport_probe.py --n 5000 --uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import MAX_TOKENS, MODEL, SimServer, percentile, proc_cpu_s, prompt

TRANSPORTS = ("sdk-create", "sdk-raw", "sdk-post", "sdk-post-aio", "httpx2", "httpx2-x8", "aiohttp", "raw")


def body_for(i: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": prompt(i), "max_tokens": MAX_TOKENS}


class RawPool:
    """C keep-alive connections; one request per connection at a time; Content-Length bodies only."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.opened = 0

    async def _get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.idle.get()

    async def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer x\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        reader, writer = await self._get()
        writer.write(head + data)
        raw_head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = raw_head.partition(b"\r\n")
        length = 0
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.idle.put_nowait((reader, writer))
        status = int(status_line.split()[1])
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    async def close(self) -> None:
        while not self.idle.empty():
            _r, w = self.idle.get_nowait()
            w.close()


async def run_transport(name: str, url: str, port: int, n: int, c: int, warmup: int, server_pid: int) -> dict[str, Any]:
    import httpx2
    import openai

    closers: list[Any] = []
    if name.startswith("sdk"):
        http_client = openai.DefaultAioHttpClient() if name == "sdk-post-aio" else None
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, http_client=http_client)
        closers.append(client.close)
        if name == "sdk-create":

            async def send(i: int) -> Any:
                return await client.chat.completions.create(model=MODEL, messages=prompt(i), max_tokens=MAX_TOKENS)

        elif name == "sdk-raw":

            async def send(i: int) -> Any:
                raw = await client.chat.completions.with_raw_response.create(
                    model=MODEL, messages=prompt(i), extra_body={"max_tokens": MAX_TOKENS}
                )
                return json.loads(raw.http_response.content)

        else:

            async def send(i: int) -> Any:
                resp = await client.post("/chat/completions", body=body_for(i), cast_to=httpx2.Response)
                return json.loads(resp.content)

    elif name.startswith("httpx2"):
        shards = 8 if name == "httpx2-x8" else 1
        per = max(1, c // shards)
        clients = [
            httpx2.AsyncClient(
                base_url=url,
                headers={"Authorization": "Bearer x"},
                limits=httpx2.Limits(max_connections=per, max_keepalive_connections=per),
                timeout=120,
            )
            for _ in range(shards)
        ]
        closers.extend(cl.aclose for cl in clients)

        async def send(i: int) -> Any:
            data = json.dumps(body_for(i), separators=(",", ":")).encode()
            resp = await clients[i % shards].post(
                "/chat/completions", content=data, headers={"Content-Type": "application/json"}
            )
            resp.raise_for_status()
            return json.loads(resp.content)

    elif name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c), headers={"Authorization": "Bearer x"})
        closers.append(session.close)
        endpoint = url + "/chat/completions"

        async def send(i: int) -> Any:
            data = json.dumps(body_for(i), separators=(",", ":")).encode()
            async with session.post(endpoint, data=data, headers={"Content-Type": "application/json"}) as resp:
                resp.raise_for_status()
                return json.loads(await resp.read())

    else:
        pool = RawPool("127.0.0.1", port, c)
        closers.append(pool.close)

        async def send(i: int) -> Any:
            return await pool.post_json("/v1/chat/completions", body_for(i))

    sem = asyncio.Semaphore(c)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            data = await send(i)
            latencies.append(time.perf_counter() - t0)
            choices = data["choices"] if isinstance(data, dict) else data.choices
            if not choices:
                raise RuntimeError("no choices")

    try:
        await asyncio.gather(*(one(-1 - i) for i in range(warmup)))
        latencies.clear()
        server0 = proc_cpu_s(server_pid) or 0.0
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        server_cpu = (proc_cpu_s(server_pid) or 0.0) - server0
    finally:
        for close in closers:
            await close()
    errors = [r for r in results if isinstance(r, BaseException)]
    return {
        "transport": name,
        "wall_s": wall,
        "cpu_ms_per_call": cpu * 1000 / n,
        "client_cpu_util": cpu / wall,
        "server_cpu_util": server_cpu / wall,
        "server_cpu_ms_per_call": server_cpu * 1000 / n,
        "errors": len(errors),
        "lat_p50_ms": percentile(latencies, 0.5) * 1000,
        "lat_p99_ms": percentile(latencies, 0.99) * 1000,
    }


def child(args: argparse.Namespace) -> None:
    coro = run_transport(
        args.transport, args.url, args.port, args.n, args.concurrency, args.concurrency, args.server_pid
    )
    if args.uvloop:
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--concurrency", "-c", type=int, default=64)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--transports", default=",".join(TRANSPORTS))
    p.add_argument("--uvloop", action="store_true")
    p.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.transport:
        child(args)
        return
    ideal = args.n * args.latency_ms / 1000 / args.concurrency
    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"N={args.n} C={args.concurrency} L={args.latency_ms:g} ms, client loop {loop}, ideal {ideal:.2f} s")
    server = SimServer(args.latency_ms)
    rows = []
    try:
        for t in [t.strip() for t in args.transports.split(",") if t.strip()]:
            cmd = [sys.executable, __file__, "--transport", t, "--url", server.url, "--port", str(server.port)]
            cmd += ["--server-pid", str(server.pid)]
            cmd += ["--n", str(args.n), "--concurrency", str(args.concurrency), "--latency-ms", f"{args.latency_ms:g}"]
            if args.uvloop:
                cmd.append("--uvloop")
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(120.0, 40 * ideal))
            line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"{t}: no result (exit {proc.returncode})\n{proc.stderr[-3000:]}")
            rows.append(json.loads(line[7:]))
            r = rows[-1]
            print(
                f"  {t:<11} wall {r['wall_s']:7.2f} s  ratio {r['wall_s'] / ideal:6.3f}  "
                f"CPU {r['cpu_ms_per_call']:.3f} ms/call (client {r['client_cpu_util']:4.0%})  "
                f"server {r['server_cpu_ms_per_call']:.3f} ms/call ({r['server_cpu_util']:4.0%})  "
                f"latency p50 {r['lat_p50_ms']:.1f} p99 {r['lat_p99_ms']:.1f} ms  errors {r['errors']}",
                flush=True,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
