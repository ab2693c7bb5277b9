"""One batch-completion run for bench/peers.py, in whichever environment runs it (see there).

    python bench/peers_child.py VARIANT BASE_URL N C

Times only the generation (imports excluded) and prints one ``RESULT {json}`` line.
"""

import asyncio
import json
import resource
import sys
import time

variant, url, n, c = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
prompts = [f"Request {i}: summarise the idea of item {i} in one sentence." for i in range(n)]


def finish(t0, c0, ok):
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"wall": wall, "cpu": cpu, "rss_mb": rss, "ok": ok}))


if variant == "plain":
    import openai

    async def go():
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        sem = asyncio.Semaphore(c)

        async def one(p):
            async with sem:
                messages = [{"role": "user", "content": p}]
                r = await client.chat.completions.create(model="sim-strong", messages=messages, max_tokens=512)
                return r.choices[0].message.content

        return await asyncio.gather(*(one(p) for p in prompts))

    t0, c0 = time.perf_counter(), time.process_time()
    out = asyncio.run(go())
    finish(t0, c0, sum(1 for o in out if o))
elif variant == "autodata":
    from autodata.config import validate_config
    from autodata.llm.runtime import ModelRuntime

    cfg = validate_config(
        {
            "models": {
                "m": {
                    "provider": "openai",
                    "model": "sim-strong",
                    "base_url": url,
                    "max_concurrency": c,
                    "min_concurrency": c,
                    "sampling": {"max_tokens": 512},
                }
            },
            "cache": {"enabled": False},
        }
    )

    async def go():
        rt = ModelRuntime(cfg, cache=None)
        try:
            calls = (rt.complete("m", [{"role": "user", "content": p}], role="bench") for p in prompts)
            return await asyncio.gather(*calls)
        finally:
            await rt.aclose()

    t0, c0 = time.perf_counter(), time.process_time()
    out = asyncio.run(go())
    finish(t0, c0, sum(1 for o in out if o.text))
elif variant == "curator":
    # Curator counts tokens with tiktoken, which downloads its encoding files: offline, a stand-in
    # that estimates 4 characters per token (cheaper than the real tokenizer, so it favours Curator).
    import tiktoken

    class _Estimate:
        def encode(self, text, **_):
            return [0] * (len(text) // 4 + 1)

    tiktoken.get_encoding = lambda name: _Estimate()
    tiktoken.encoding_for_model = lambda name: _Estimate()
    from bespokelabs import curator

    class Gen(curator.LLM):
        def prompt(self, row):
            return row["prompt"]

        def parse(self, row, response):
            return {"out": response}

    llm = Gen(
        model_name="sim-strong",
        backend="openai",
        generation_params={"max_tokens": 512},
        backend_params={
            "base_url": url,
            "api_key": "x",
            "max_concurrent_requests": c,
            "max_requests_per_minute": 10_000_000,
            "max_tokens_per_minute": 10_000_000_000,
            "max_retries": 0,
            "require_all_responses": False,
        },
    )
    t0, c0 = time.perf_counter(), time.process_time()
    out = llm([{"prompt": p} for p in prompts])
    ds = getattr(out, "dataset", out)
    finish(t0, c0, len(ds))
elif variant == "distilabel":
    from distilabel.models.llms import OpenAILLM

    llm = OpenAILLM(
        model="sim-strong", base_url=url, api_key="x", max_retries=0, generation_kwargs={"max_new_tokens": 512}
    )
    llm.load()
    t0, c0 = time.perf_counter(), time.process_time()
    ok = 0
    for i in range(0, n, c):
        batch = [[{"role": "user", "content": p}] for p in prompts[i : i + c]]
        for res in llm.generate(inputs=batch, num_generations=1):
            ok += bool(res["generations"][0])
    finish(t0, c0, ok)
