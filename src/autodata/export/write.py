"""Write a selection of examples in one format, and optionally push a dataset to the Hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from jinja2 import Environment, PackageLoader

from autodata.errors import UserError
from autodata.export.rows import (
    RL_SCHEMA,
    SFT_SCHEMA,
    Selection,
    example_row,
    examples_schema,
    rl_row,
    select,
    sft_row,
)
from autodata.run_info import RunInfo
from autodata.store.files import atomic_jsonl
from autodata.store.run_store import RunStore

FORMATS = ("jsonl", "parquet", "hf", "rl", "sft")
DEFAULT_NAMES = {
    "jsonl": "examples.jsonl",
    "parquet": "examples.parquet",
    "hf": "hf",
    "rl": "rl.parquet",
    "sft": "sft.parquet",
}
INCLUDE_TEXT = {
    "approved": "only examples a reviewer approved",
    "accepted": "every example the harness accepted",
    "unrejected": "accepted examples no reviewer rejected",
}


@dataclass(slots=True)
class ExportResult:
    path: Path
    format: str
    rows: int
    include: str
    selection: Selection
    card: str | None = None


def _table(fmt: str, sel: Selection) -> pa.Table:
    if fmt == "rl":
        return pa.Table.from_pylist([rl_row(e, i) for i, e in enumerate(sel.examples)], schema=RL_SCHEMA)
    if fmt == "sft":
        rows = [r for r in (sft_row(e) for e in sel.examples) if r is not None]
        return pa.Table.from_pylist(rows, schema=SFT_SCHEMA)
    rows = [example_row(e) for e in sel.examples]
    return pa.Table.from_pylist(rows, schema=examples_schema(rows))


def _write_jsonl(table: pa.Table, path: Path) -> None:
    atomic_jsonl(path, table.to_pylist())


def dataset_card(store: RunStore, sel: Selection, fmt: str, columns: list[str], name: str) -> str:
    info = RunInfo.load(store)
    env = Environment(
        loader=PackageLoader("autodata.export", "templates"), autoescape=False, keep_trailing_newline=True
    )
    return env.get_template("dataset_card.md").render(
        name=name,
        license=None,
        simulated=info.simulated,
        documents=sum(store.status_counts().values()),
        accepted=sel.accepted,
        exported=len(sel.examples),
        reviews=sel.review_counts,
        include=sel.include,
        include_text=INCLUDE_TEXT[sel.include],
        recipe_hash=info.recipe_hash,
        preset=info.preset_name,
        thresholds=info.thresholds(),
        models=info.models,
        format=fmt,
        columns=columns,
    )


def export(
    run_dir: Path,
    fmt: str,
    out: Path | None = None,
    *,
    include: str = "auto",
    push_to_hub: str | None = None,
    private: bool = False,
) -> ExportResult:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if push_to_hub and fmt != "hf":
        raise UserError("--push-to-hub goes with --format hf")
    store = RunStore.open_existing(run_dir)
    try:
        sel = select(store, include)
        table = _table(fmt, sel)
        target = out or Path(run_dir) / "export" / DEFAULT_NAMES[fmt]
        card = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "jsonl" or (fmt in ("rl", "sft") and target.suffix == ".jsonl"):
                _write_jsonl(table, target)
            elif fmt == "hf":
                card = dataset_card(store, sel, fmt, table.column_names, push_to_hub or Path(run_dir).resolve().name)
                _save_hf(table, target, card)
            else:
                pq.write_table(table, target)
        except OSError as exc:
            raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
        if push_to_hub:
            _push(target, push_to_hub, card or "", private=private)
        return ExportResult(target, fmt, table.num_rows, sel.include, sel, card)
    finally:
        store.close()


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError("--format hf needs the `datasets` package: pip install 'autodata[hf]'") from None
    return datasets


def _save_hf(table: pa.Table, target: Path, card: str) -> None:
    datasets = _datasets()
    datasets.disable_progress_bars()
    datasets.Dataset(table).save_to_disk(str(target))
    (target / "README.md").write_text(card, encoding="utf-8")


def _push(target: Path, repo: str, card: str, *, private: bool) -> None:
    """Upload the saved dataset and its card; credentials come from the usual Hub login or HF_TOKEN."""
    datasets = _datasets()
    from huggingface_hub import DatasetCard

    try:
        datasets.load_from_disk(str(target)).push_to_hub(repo, private=private)
        DatasetCard(card).push_to_hub(repo, repo_type="dataset")
    except Exception as exc:  # the hub client's errors have no common base; say what happened, briefly
        raise UserError(f"push to {repo} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
