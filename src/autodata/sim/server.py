"""``autodata serve-sim``: the simulated ladder behind a real OpenAI-compatible HTTP server.

It lets the whole HTTP path (the ``openai`` client, connection pooling, timeouts, replicas) be
exercised and benchmarked without weights. Starlette on uvicorn: the same stack many real model
gateways use, small enough not to be the bottleneck of a benchmark on one machine.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from autodata.llm.tokens import estimate_tokens
from autodata.sim.gpu import GpuEngine, metrics_text, prompt_text
from autodata.sim.ladder import FINGERPRINT, LADDER, SimulatedLadder

SIM_HEADERS = {"x-autodata-simulated": "true"}


def create_app(ladder: SimulatedLadder, latency_ms: float = 0.0, engine: GpuEngine | None = None) -> Starlette:
    """The app; with ``engine`` (a GPU capacity model) answers wait for it instead of ``latency_ms``."""
    delay = latency_ms / 1000.0

    async def chat(request: Request) -> Response:
        arrived = asyncio.get_running_loop().time()
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(
                {"error": {"message": "request body is not valid JSON", "type": "BadRequestError", "code": 400}},
                status_code=400,
                headers=SIM_HEADERS,
            )
        if not isinstance(body, dict):
            return JSONResponse(
                {"error": {"message": "request body must be a JSON object", "type": "BadRequestError", "code": 400}},
                status_code=400,
                headers=SIM_HEADERS,
            )
        if body.get("stream"):
            return JSONResponse(
                {
                    "error": {
                        "message": "serve-sim does not stream; send stream=false",
                        "type": "BadRequestError",
                        "code": 400,
                    }
                },
                status_code=400,
                headers=SIM_HEADERS,
            )
        status, payload = ladder.respond(body)
        if engine is not None and status == 200:
            await engine.generate(
                prompt_text(body["messages"]), int(payload["usage"]["prompt_tokens"]), _output_tokens(payload)
            )
        elif delay:
            # L is the service time, counted from arrival like a real server's latency: the
            # simulator's own work is part of it, not added on top (else no client could reach
            # the ideal calls*L/C that benchmarks measure against)
            await asyncio.sleep(max(0.0, delay - (asyncio.get_running_loop().time() - arrived)))
        return Response(json.dumps(payload), status_code=status, media_type="application/json", headers=SIM_HEADERS)

    async def models(_: Request) -> Response:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": FINGERPRINT, "simulated": True, "skill": m.skill}
            for name, m in LADDER.items()
        ]
        return JSONResponse({"object": "list", "data": data}, headers=SIM_HEADERS)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "simulated": True}, headers=SIM_HEADERS)

    async def metrics(_: Request) -> Response:
        if engine is None:
            return PlainTextResponse("# serve-sim runs without a GPU model (--gpu-model): no metrics\n")
        return PlainTextResponse(metrics_text(engine), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def _output_tokens(payload: dict[str, Any]) -> list[int]:
    """Tokens each choice generates (text and reasoning), as the ladder counts them."""
    out = []
    for choice in payload["choices"]:
        msg = choice.get("message") or {}
        out.append(estimate_tokens(msg.get("content") or "") + estimate_tokens(msg.get("reasoning_content") or ""))
    return out


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind first so ``--port 0`` can report the free port it got before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every answer on a kept-alive connection waits out Nagle + delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="off", timeout_keep_alive=30, backlog=2048
    )
    server = uvicorn.Server(config)
    await server.serve(sockets=[sock])
