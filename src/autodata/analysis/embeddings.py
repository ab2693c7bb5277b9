"""Near-duplicates by embedding similarity, when the config names an embedding endpoint.

The texts go to the endpoint's OpenAI-compatible ``/v1/embeddings`` in batches; two examples are
near-duplicates when the cosine similarity of their vectors reaches the threshold. This catches
paraphrases MinHash misses (the same question in other words). Embedding calls go straight through
the ``openai`` client: they are neither cached nor paced by the chat runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openai

from autodata.analysis.dedup import Similarity, dedup_run
from autodata.analysis.runs import read_examples, task_text
from autodata.analysis.similarity import Pair
from autodata.config import Config
from autodata.errors import UserError

BATCH = 64
BLOCK = 1024  # rows of the similarity matrix held at once


async def embed(cfg: Config, endpoint: str, texts: Sequence[str]) -> np.ndarray:
    ep = cfg.endpoint_for(endpoint)
    if ep.provider != "openai":
        raise UserError(f"models.{endpoint}: embedding dedup needs an OpenAI-compatible endpoint (provider: openai)")
    client = openai.AsyncOpenAI(
        base_url=ep.base_url[0] if ep.base_url else None,
        api_key=ep.api_key() or "not-needed",
        timeout=ep.timeout_s,
        max_retries=ep.max_retries,
    )
    vectors: list[list[float]] = []
    try:
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            try:
                resp = await client.embeddings.create(model=ep.model, input=batch)
            except openai.APIError as exc:
                raise UserError(f"embedding endpoint {endpoint!r} failed: {exc}") from None
            vectors += [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]
    finally:
        await client.close()
    x = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def cosine_pairs(x: np.ndarray, threshold: float) -> list[Pair]:
    pairs: list[Pair] = []
    for start in range(0, len(x), BLOCK):
        sims = x[start : start + BLOCK] @ x.T
        for r, c in zip(*np.nonzero(sims >= threshold), strict=True):
            i = start + int(r)
            if int(c) > i:
                pairs.append(Pair(i, int(c), float(sims[r, c])))
    return pairs


async def embedding_pairs(
    cfg: Config, endpoint: str, run_dir: Path, *, threshold: float = 0.9, on: str = "task"
) -> dict[str, Any]:
    path = run_dir / "examples.jsonl"
    if not path.exists():
        raise UserError(f"{run_dir} has no examples.jsonl")
    x = await embed(cfg, endpoint, [task_text(e, on) for e in read_examples(path)])

    def detector(texts: Sequence[str]) -> tuple[Sequence[Pair], Similarity]:
        return cosine_pairs(x, threshold), lambda i, j: float(x[i] @ x[j])

    return dedup_run(
        run_dir, threshold=threshold, on=on, detector=detector, method=f"embeddings:{cfg.models[endpoint].model}"
    )
