"""The Python API, for notebooks and scripts: load a config, run it on documents, get a ``datasets.Dataset``.

The same loop as ``autodata run`` (same roles, cache, limits and acceptance), driven from Python the
way Curator and distilabel users work: the documents can be a list of strings, a list of dicts, a
``datasets.Dataset`` (or any iterable of rows), or the config's own ``documents.paths``.

    import autodata
    cfg = autodata.load_config("examples/quickstart.yaml")
    ds = autodata.generate(cfg, ["First document text...", "Second..."], out="runs/nb")  # a Dataset
    autodata.preview(cfg, my_dataset, n=2).to_pandas()  # what the loop did with 2 documents, nothing kept

- :func:`generate` runs and returns the examples in the export layout (``layout="examples"``, the
  columns of ``autodata export --format parquet``; or ``"rl"`` / ``"sft"``). With ``out`` the run
  directory stays (review it, export it, resume it: a second call with the same ``out`` continues the
  run); without, the run lives in a temporary directory that is removed once the rows are in memory.
- :func:`preview` runs a few documents in a temporary directory and returns one row per round: the
  question the challenger wrote, the decision and its reasons, the weak and strong scores.
- :func:`load_examples` reads a finished run directory into a ``datasets.Dataset``.

A call from inside a running event loop (Jupyter) runs the loop on a worker thread and waits for it.
Errors are the CLI's: a bad config raises :class:`autodata.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autodata.config import Config, validate_config
from autodata.config import load_config as _load_config_file
from autodata.errors import UserError

LAYOUTS = ("examples", "rl", "sft")
INPUT_FILE = "inputs.jsonl"  # where in-memory documents are written, inside the run directory


def load_config(config: str | Path | Mapping[str, Any] | Config, overrides: list[str] | None = None) -> Config:
    """A validated :class:`Config` from a YAML path, a dict (the YAML's content) or a Config.

    ``overrides``: ``--set`` style ``"key.path=value"`` strings. Raises ConfigError naming the key.
    """
    if isinstance(config, Config):
        if not overrides:
            return config
        config = config.model_dump(mode="json")
    if isinstance(config, Mapping):
        from autodata.config import apply_overrides

        return validate_config(apply_overrides(json.loads(json.dumps(dict(config))), overrides or []), "<dict>")
    return _load_config_file(config, overrides)


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError("the Python API returns datasets.Dataset: pip install 'autodata[hf]'") from None
    return datasets


def _rows(documents: Any, text_field: str, title_field: str) -> Iterable[dict[str, Any]]:
    """Documents as JSON rows with the config's text and title fields."""
    if isinstance(documents, (str, bytes, Path)):
        raise TypeError("documents: a list of texts, of dicts, or a datasets.Dataset (a path goes in documents.paths)")
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            yield {text_field: doc, title_field: f"document {i + 1}"}
        elif isinstance(doc, Mapping):
            if not isinstance(doc.get(text_field), str):
                raise UserError(f"document {i + 1} has no text in {text_field!r} (documents.text_field)")
            row = {text_field: doc[text_field]}
            if doc.get(title_field) is not None:
                row[title_field] = str(doc[title_field])
            yield row
        else:
            raise TypeError(f"document {i + 1}: expected a string or a mapping, not {type(doc).__name__}")


def _with_documents(cfg: Config, documents: Any, run_dir: Path) -> Config:
    if documents is None:
        return cfg
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / INPUT_FILE
    text_field, title_field = cfg.documents.text_field, cfg.documents.title_field
    with path.open("w", encoding="utf-8") as fh:
        for row in _rows(documents, text_field, title_field):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    data = cfg.model_dump(mode="json")
    data["documents"]["paths"] = [str(path)]
    return validate_config(data, "<python api>")


def _run_sync(coro_factory: Any) -> Any:
    """Run a coroutine to the end from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="autodata-api")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _run(cfg: Config, run_dir: Path, limit: int | None, use_cache: bool) -> dict[str, Any]:
    from autodata.loop.run import run

    return _run_sync(lambda: run(cfg, run_dir, limit=limit, use_cache=use_cache))


def load_examples(run_dir: str | Path, *, layout: str = "examples", include: str | list[str] = "auto") -> Any:
    """A finished run's examples as an in-memory ``datasets.Dataset``.

    ``layout``: ``examples`` (every field, the parquet export's columns), ``rl`` (TRL/verl prompt rows)
    or ``sft`` (chat messages); ``include``: the export's selection rule (``auto``: approved once anyone
    reviewed, else accepted). Raises UserError for an unknown layout or a directory that is no run.
    """
    from autodata.export.rows import select
    from autodata.store.run_store import RunStore

    if layout not in LAYOUTS:
        raise UserError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    path = Path(run_dir)
    if not (path / "run.db").exists():
        raise UserError(f"{path} is not a run directory (no run.db)")
    datasets = _datasets()
    store = RunStore(path)
    try:
        examples = select(store, include).examples
    finally:
        store.close()
    return datasets.Dataset(datasets.table.InMemoryTable(_table(layout, examples)))


def _table(layout: str, examples: list[dict[str, Any]]) -> Any:
    from autodata.export.rows import table

    return table(layout, examples)


def generate(
    config: str | Path | Mapping[str, Any] | Config,
    documents: Any = None,
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    use_cache: bool = True,
    layout: str = "examples",
    include: str | list[str] = "auto",
) -> Any:
    """Run the loop on ``documents`` (default: the config's ``documents.paths``) and return the examples.

    ``documents``: texts, dicts with the config's ``documents.text_field`` (and ``title_field``), or a
    ``datasets.Dataset`` with those columns. ``out``: keep the run directory there (resumable); None: a
    temporary one, removed after loading. ``limit``: at most this many documents. Returns a
    ``datasets.Dataset`` in ``layout`` (see :func:`load_examples`); zero rows when nothing was accepted.
    """
    if layout not in LAYOUTS:
        raise UserError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    cfg = load_config(config)
    if out is not None:
        run_dir = Path(out)
        _run(_with_documents(cfg, documents, run_dir), run_dir, limit, use_cache)
        return load_examples(run_dir, layout=layout, include=include)
    with tempfile.TemporaryDirectory(prefix="autodata-") as tmp:
        run_dir = Path(tmp) / "run"
        _run(_with_documents(cfg, documents, run_dir), run_dir, limit, use_cache)
        return load_examples(run_dir, layout=layout, include=include)


def preview(
    config: str | Path | Mapping[str, Any] | Config,
    documents: Any = None,
    *,
    n: int = 3,
    use_cache: bool = True,
) -> Any:
    """What the loop does with the first ``n`` documents, without a run directory: one row per round.

    Columns: ``document_id``, ``title``, ``status`` (the document's outcome), ``round``, ``question``,
    ``reference_answer``, ``accepted``, ``stage`` (where the decision was made), ``reasons`` (why a
    round was rejected), ``weak_mean``, ``strong_mean``, ``gap``, ``error``. Calls are cached as in a
    run, so a later :func:`generate` over the same documents reuses them.
    """
    if n < 1:
        raise UserError(f"n must be at least 1, not {n}")
    cfg = load_config(config)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="autodata-preview-") as tmp:
        run_dir = Path(tmp) / "run"
        _run(_with_documents(cfg, documents, run_dir), run_dir, n, use_cache)
        episodes = run_dir / "episodes.jsonl"
        lines = episodes.read_text(encoding="utf-8").splitlines() if episodes.exists() else []
    for line in lines:
        ep = json.loads(line)
        for rnd in ep.get("rounds") or []:
            example = rnd.get("example") or {}
            decision = rnd.get("decision") or {}
            rows.append(
                {
                    "document_id": ep.get("document_id"),
                    "title": ep.get("title"),
                    "status": ep.get("status"),
                    "round": rnd.get("round"),
                    "question": example.get("question"),
                    "reference_answer": example.get("reference_answer"),
                    "accepted": bool(decision.get("accepted")),
                    "stage": decision.get("stage"),
                    "reasons": [_reason(r) for r in decision.get("reasons") or []],
                    "weak_mean": decision.get("weak_mean"),
                    "strong_mean": decision.get("strong_mean"),
                    "gap": decision.get("gap"),
                    "error": None if rnd.get("error") is None else str(rnd.get("error")),
                }
            )
    datasets = _datasets()
    return datasets.Dataset.from_list(rows, features=_preview_features(datasets))


def _reason(r: Any) -> str:
    """A stored rejection reason ({code, group, message}) in words."""
    return str(r.get("message") or r.get("code")) if isinstance(r, Mapping) else str(r)


def _preview_features(datasets: Any) -> Any:
    v = datasets.Value
    return datasets.Features(
        {
            "document_id": v("string"),
            "title": v("string"),
            "status": v("string"),
            "round": v("int64"),
            "question": v("string"),
            "reference_answer": v("string"),
            "accepted": v("bool"),
            "stage": v("string"),
            "reasons": datasets.Sequence(v("string")),
            "weak_mean": v("float64"),
            "strong_mean": v("float64"),
            "gap": v("float64"),
            "error": v("string"),
        }
    )
