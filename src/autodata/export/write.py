"""Write a selection of examples in one format, optionally cut into splits by document, and
optionally push a dataset to the Hub.

Safety: an export never writes into the run store (``run.db`` and its ``-wal``/``-shm``/``-journal``
files; nothing else either, however the path is spelled), refuses an existing output unless
``force``, and refuses to put a ``datasets`` directory into a folder that holds anything but an
earlier ``datasets`` save. Files are written whole or not at all (a temporary file renamed over).

Types: each layout has one Arrow schema, declared once (``rows.schema``), the same in every format and
every run (``created_at`` is a string everywhere, ``rows.created_at``; ``models`` a list of role/model
pairs whatever roles a run had), so exports concatenate. Parquet and ``datasets`` files hold it. JSON
lines cannot: a column null in every row (an sft ``score`` where every answer imitated is the unscored
reference answer) or a list empty in every row (``reasoning_skills`` when no challenger named one) is
read as the null type. So every folder export's card declares the schema as the Hub's ``dataset_info`` features with a
``configs`` entry naming each split's files (``card_metadata``): ``datasets.load_dataset(FOLDER)`` reads
them and casts to the declared types. A lone JSONL file has no card; the export's message names its
columns a JSON reader cannot type (``rows.untyped_in_json``), and ``features(fmt)`` gives the types as
``datasets.Features`` for ``load_dataset("json", data_files=..., features=...)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from jinja2 import Environment, PackageLoader

from autodata.errors import UserError
from autodata.example import ReviewedExample
from autodata.export.rows import (
    Selection,
    parse_split,
    schema,
    select,
    split_by_document,
    table,
    untyped_in_json,
)
from autodata.run_info import RunInfo
from autodata.store.lock import LOCK_NAME
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
    "accepted": "every example the run kept, reviews aside",
    "unrejected": "accepted examples no reviewer rejected",
}
EXCLUDED_TEXT = {
    "review": "left out by the review rule",
    "failed_acceptance": "do not meet the acceptance predicate",
    "contamination": "flagged by the contamination check",
    "duplicate": "flagged as near-duplicates by dedup",
}
STORE_FILES = ("run.db", "run.db-wal", "run.db-shm", "run.db-journal")
TASK_CATEGORIES = ["question-answering", "text-generation"]


@dataclass(slots=True)
class ExportResult:
    path: Path
    format: str
    rows: int
    include: str
    selection: Selection
    card: str | None = None
    splits: dict[str, int] = field(default_factory=dict)  # split -> rows, when cut into splits
    untyped: list[str] = field(default_factory=list)  # JSONL file without a card: columns JSON cannot type

    def message(self) -> str:
        """One line for the command's output: rows, selection, and what was left out and why."""
        sel = self.selection
        extras = f" + {' + '.join(sel.extras)}" if sel.extras else ""
        text = (
            f"wrote {self.path}: {self.rows} rows ({self.format}; {INCLUDE_TEXT[self.include]}{extras}; "
            f"{sel.stored} example{'' if sel.stored == 1 else 's'} in the run"
        )
        if sel.excluded:
            text += "; left out: " + ", ".join(f"{n} {EXCLUDED_TEXT.get(k, k)}" for k, n in sel.excluded.items())
        flagged_in = sum(1 for e in sel.examples if e.flags)
        if flagged_in:
            text += f"; {flagged_in} exported rows carry flags (column `flags`)"
        if self.splits:
            text += "; splits by document: " + ", ".join(f"{k} {v}" for k, v in self.splits.items())
        text += ")"
        if self.untyped:
            layout = self.format if self.format in ("rl", "sft") else "jsonl"
            text += (
                f"; null or empty in every row, so a JSON reader types them null: {', '.join(self.untyped)}; "
                f"load with features=autodata.export.write.features({layout!r}), or export a folder "
                "(--split train=1) whose card declares the types"
            )
        return text


def features(fmt: str, columns: Sequence[str] = ()) -> Any:
    """The ``datasets.Features`` of a format's rows (``columns``: the ``--include`` columns), the exact
    types every export of it holds or declares; pass them to ``load_dataset("json", ..., features=...)``
    for a lone JSONL export."""
    import datasets

    return datasets.Features.from_arrow_schema(schema(_layout(fmt), columns))


def _layout(fmt: str) -> str:
    return fmt if fmt in ("rl", "sft") else "examples"


# The Hub's spelling of a column type in a card's ``dataset_info.features`` (the YAML datasets writes with
# ``Features._to_yaml_list`` and reads with ``Features._from_yaml_list``; written here from the Arrow
# schema because datasets is an optional dependency and a JSONL or Parquet folder needs a card too).
DTYPES = {pa.string(): "string", pa.float64(): "float64", pa.int64(): "int64", pa.bool_(): "bool"}


def _yaml_type(t: pa.DataType) -> tuple[str, Any]:
    if pa.types.is_struct(t):
        return "struct", [_yaml_field(f) for f in t]
    if pa.types.is_list(t):
        key, inner = _yaml_type(t.value_type)
        return "list", inner if key in ("dtype", "struct") else {key: inner}
    return "dtype", DTYPES[t]  # a KeyError here is a schema type this table does not spell yet


def _yaml_field(f: pa.Field) -> dict[str, Any]:
    key, value = _yaml_type(f.type)
    return {"name": f.name, key: value}


def card_metadata(
    fmt: str,
    columns: Sequence[str],
    splits: dict[str, int],
    data_files: dict[str, str],
    split_bytes: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The card's ``dataset_info`` and ``configs`` (https://huggingface.co/docs/hub/datasets-cards).

    ``dataset_info``: every column's type, declared from ``rows.schema`` (``fmt``'s layout with the
    ``--include`` ``columns``), and each split's rows (``splits``, which datasets checks) and Arrow bytes
    (``split_bytes``, 0 where not given). ``configs``: each split's files (``data_files``: split -> path
    or glob relative to the folder; the Hub's manual configuration,
    https://huggingface.co/docs/hub/datasets-manual-configuration). ``load_dataset(FOLDER)`` builds with
    these features (``DatasetInfosDict.from_dataset_card_data``), so a column null in every row of a
    split loads as its declared type and every split's files are cast to one schema.

    A split without rows (``--split`` with fewer documents than splits) is left out of both, unless every
    split is empty: datasets refuses to build a split of 0 examples ('Instruction "test" corresponds to no
    data!'), which failed ``load_dataset(FOLDER)`` for every split. Its (empty) file is still written."""
    if any(splits.values()):
        splits = {s: n for s, n in splits.items() if n}
        data_files = {s: path for s, path in data_files.items() if s in splits}
    return {
        "dataset_info": {
            "features": [_yaml_field(f) for f in schema(_layout(fmt), columns)],
            "splits": [
                {"name": s, "num_bytes": (split_bytes or {}).get(s, 0), "num_examples": n} for s, n in splits.items()
            ],
        },
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": path} for s, path in data_files.items()],
            }
        ],
    }


def _atomic_file(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private (0600); an export is meant to be shared like any file the user
        # writes (and like the hf folder's files): the mode a new file gets under the process's umask
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_file(table: pa.Table, path: Path, jsonl: bool) -> None:
    def jsonl_writer(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as fh:
            for row in table.to_pylist():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    _atomic_file(path, jsonl_writer if jsonl else lambda tmp: pq.write_table(table, tmp))


# ---------------------------------------------------------------------------------------- safety


def _store_files(run_dir: Path) -> list[Path]:
    return [Path(run_dir) / name for name in STORE_FILES]


def _is_store_file(path: Path, run_dir: Path) -> bool:
    resolved = path.resolve()
    for f in _store_files(run_dir):
        if resolved == f.resolve():
            return True
        if path.exists() and f.exists() and os.path.samefile(path, f):
            return True  # a hard link or another spelling of the same file
    return False


def check_target(target: Path, run_dir: Path, *, directory: bool, force: bool) -> None:
    """Refuse an output that would touch the run store, or replace something without ``force``.
    ``directory``: the output is a folder (``hf``, or any format cut into splits). Raises UserError."""
    store = run_dir.resolve()
    resolved = target.resolve()
    if _is_store_file(target, run_dir) or (directory and resolved in (store, *store.parents)):
        raise UserError(
            f"--out {target} would overwrite the run store of {run_dir}; choose a path outside its "
            f"{', '.join(STORE_FILES[:3])} (e.g. the default {run_dir}/export/...)"
        )
    if (target.exists() and not target.is_dir() and resolved.parent == store) or target.name == LOCK_NAME:
        # summary.json, examples.jsonl, episodes.jsonl, the lock (replaced, it would let a second command
        # in beside the one holding it), report.html...: what the run's commands wrote, never an export
        raise UserError(
            f"--out {target} is one of the run's own files in {run_dir}; --force never replaces them: choose a "
            f"new file name or a path outside the run directory (e.g. the default {run_dir}/export/...)"
        )
    if not target.exists():
        return
    if not directory:
        if target.is_dir():
            raise UserError(f"--out {target} is a directory; give a file name")
        if not force:
            raise UserError(f"--out {target} exists; pass --force to replace it")
        return
    if not target.is_dir():
        raise UserError(f"--out {target} exists and is not a directory")
    if any(target.iterdir()):
        if not force:
            raise UserError(f"--out {target} is not empty; choose an empty or new folder, or --force to replace it")
        if not _is_export_dir(target):
            raise UserError(
                f"--out {target} holds files that are not an earlier export; --force only replaces an export "
                "folder, choose an empty or new folder"
            )
        if (target / "run.db").exists():
            raise UserError(f"--out {target} holds a run store; choose another folder")


def _is_export_dir(path: Path) -> bool:
    """A folder this module wrote: a ``datasets`` save, or split files with our card, nothing else."""
    names = {p.name for p in path.iterdir()}
    if "run.db" in names:
        return False
    if names & {"dataset_info.json", "dataset_dict.json", "state.json"}:
        return True
    return "README.md" in names and all(n == "README.md" or n.endswith((".jsonl", ".parquet")) for n in names)


def _replace_dir(target: Path, fill: Any) -> None:
    """Build the folder beside ``target``, then swap it in (an interrupted export leaves the old one)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fill(tmp)
        # mkdtemp makes the folder private (0700), so nobody else (a training job under another user)
        # could read the export: give it the mode a new folder gets under the process's umask
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------- card


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def languages(texts: list[str], min_share: float = 0.05) -> list[str]:
    """ISO 639-1 codes of the languages of ``texts`` (py3langid, which ships its model), most frequent
    first; a language counts from ``min_share`` of the texts on. Empty for no text."""
    from collections import Counter

    import py3langid

    found = Counter(py3langid.classify(t)[0] for t in texts if t.strip())
    total = sum(found.values())
    return [lang for lang, n in found.most_common() if n / total >= min_share] if total else []


def _frozen_hash(store: RunStore, config: dict[str, Any]) -> str | None:
    stored = store.get_meta("frozen_hash")
    if stored:
        return str(stored)
    try:  # older runs: from the stored config (with this version's frozen prompts)
        from autodata.config import Config
        from autodata.meta.recipe import frozen_hash

        return frozen_hash(Config.model_validate(config))
    except Exception:  # a stored config this version cannot read: say nothing rather than guess
        return None


def dataset_card(
    store: RunStore,
    sel: Selection,
    fmt: str,
    columns: list[str],
    name: str | None = None,
    *,
    rows: int | None = None,
    splits: dict[str, int] | None = None,
    license: str | None = None,
    data_files: dict[str, str] | None = None,
    split_bytes: dict[str, int] | None = None,
) -> str:
    """The dataset card (Hub README.md): YAML metadata (license, language, task categories, size
    category, pretty name, and ``card_metadata``: the declared column types and the splits, with
    ``configs`` when ``data_files`` names each split's files) and what made the data: the config, recipe
    and frozen hashes, acceptance preset, models, and the counts of what was exported and what was left
    out, and why."""
    info = RunInfo.load(store)
    cfg_dataset = info.config.get("dataset") or {}
    env = Environment(
        loader=PackageLoader("autodata.export", "templates"), autoescape=False, keep_trailing_newline=True
    )
    n = len(sel.examples) if rows is None else rows
    metadata = card_metadata(fmt, sel.extras, splits or {"train": n}, data_files or {}, split_bytes)
    if not data_files:
        del metadata["configs"]
    return env.get_template("dataset_card.md").render(
        name=name or cfg_dataset.get("name") or f"autodata-{info.profile}-{store.dir.resolve().name}",
        license=license or cfg_dataset.get("license") or "unknown",
        languages=languages([f"{e.question}\n{e.reference_answer}" for e in sel.examples]),
        task_categories=TASK_CATEGORIES,
        size_category=size_category(n),
        simulated=info.simulated,
        documents=sum(store.status_counts().values()),
        stored=sel.stored,
        accepted=sel.accepted,
        meets_acceptance=sel.meets_acceptance,
        exported=n,
        splits=splits or {},
        reviews=sel.review_counts,
        flagged=sel.flagged,
        excluded={EXCLUDED_TEXT.get(k, k): v for k, v in sel.excluded.items()},
        extras=sel.extras,
        checks=sel.checks,
        include=sel.include,
        include_text=INCLUDE_TEXT[sel.include],
        recipe_hash=info.recipe_hash,
        frozen_hash=_frozen_hash(store, info.config),
        recipe=store.get_meta("recipe"),
        profile=info.profile,
        preset=info.preset_name,
        thresholds=info.thresholds(),
        models=info.models,
        format=fmt,
        columns=columns,
        config_yaml=yaml.safe_dump(info.config, sort_keys=False, allow_unicode=True).rstrip(),
        metadata_yaml=yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True).rstrip(),
    )


# ---------------------------------------------------------------------------------------- export


def export(
    run_dir: Path,
    fmt: str,
    out: Path | None = None,
    *,
    include: str | list[str] = "auto",
    split: str | dict[str, float] | None = None,
    seed: int = 0,
    force: bool = False,
    push_to_hub: str | None = None,
    private: bool = False,
    name: str | None = None,
    license: str | None = None,
) -> ExportResult:
    """Export the examples of ``run_dir`` in ``fmt`` (one of ``FORMATS``) to ``out`` (a file; a
    folder for ``hf`` or with ``split``; default under ``run_dir/export/``).

    ``include``: the review rule and extras (``rows.parse_include``). ``split``: shares by name
    ("train=0.9,validation=0.05,test=0.05"), cut by document with ``seed``; each split becomes
    ``<name>.jsonl`` / ``<name>.parquet`` in the folder (a ``DatasetDict`` for ``hf``), with a
    README.md card. Raises UserError for a bad flag, an output it must not write, or a write error."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if push_to_hub and fmt != "hf":
        raise UserError("--push-to-hub goes with --format hf")
    spec = parse_split(split) if isinstance(split, str) else split
    run_dir = Path(run_dir)
    store = RunStore.open_existing(run_dir)
    try:
        sel = select(store, include)
        directory = fmt == "hf" or spec is not None
        default = DEFAULT_NAMES[fmt] if spec is None else f"{Path(DEFAULT_NAMES[fmt]).stem}-splits"
        target = Path(out) if out is not None else run_dir / "export" / default
        check_target(target, run_dir, directory=directory, force=force)
        jsonl = fmt == "jsonl" or (fmt in ("rl", "sft") and target.suffix == ".jsonl")
        parts = (
            split_by_document(sel.examples, spec, seed, _groups(store, sel.examples))
            if spec is not None
            else {"train": sel.examples}
        )
        tables = {s: table(fmt, exs, s, sel.extras) for s, exs in parts.items()}
        total = sum(t.num_rows for t in tables.values())
        columns = next(iter(tables.values())).column_names
        card = pushed_card = None
        ext = ".jsonl" if fmt == "jsonl" else ".parquet"
        counts = {s: t.num_rows for s, t in tables.items()}

        def card_for(files: dict[str, str]) -> str:
            return dataset_card(
                store,
                sel,
                fmt,
                columns,
                name or push_to_hub,
                rows=total,
                splits=counts if spec else None,
                split_bytes={s: t.nbytes for s, t in tables.items()},
                license=license,
                data_files=files,
            )

        if directory:  # the files of each split; none for hf: a save_to_disk folder is read by load_from_disk
            card = card_for({} if fmt == "hf" else {s: f"{s}{ext}" for s in tables})
        if push_to_hub:  # the Hub's layout of push_to_hub: data/<split>-NNNNN-of-NNNNN.parquet
            pushed_card = card_for({s: f"data/{s}-*" for s in tables})
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "hf":
                _replace_dir(target, lambda tmp: _save_hf(tables, tmp, card or "", spec is not None))
            elif spec is not None:

                def fill(tmp: Path) -> None:
                    for s, t in tables.items():
                        _write_file(t, tmp / f"{s}{ext}", fmt == "jsonl")
                    (tmp / "README.md").write_text(card or "", encoding="utf-8")

                _replace_dir(target, fill)
            else:
                _write_file(tables["train"], target, jsonl)
        except OSError as exc:
            raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
        if push_to_hub:
            _push(target, push_to_hub, pushed_card or "", private=private)
        splits = counts if spec is not None else {}
        untyped = untyped_in_json(tables["train"]) if jsonl and not directory else []
        return ExportResult(target, fmt, total, sel.include, sel, card, splits, untyped)
    finally:
        store.close()


def _groups(store: RunStore, examples: list[ReviewedExample]) -> dict[str, str]:
    """Document id -> its source (two documents from one source file go to the same split)."""
    out = {}
    for e in examples:
        doc = store.document(e.document_id)
        out[e.document_id] = str(doc["source"]) if doc else e.document_id
    return out


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError("--format hf needs the `datasets` package: pip install 'autodata[hf]'") from None
    return datasets


def _save_hf(tables: dict[str, pa.Table], target: Path, card: str, as_dict: bool) -> None:
    datasets = _datasets()
    datasets.disable_progress_bars()
    if as_dict:  # a split without rows only when all are: load_from_disk fails on an empty one (IndexError)
        kept = {s: t for s, t in tables.items() if t.num_rows} or tables
        datasets.DatasetDict({s: datasets.Dataset(t) for s, t in kept.items()}).save_to_disk(str(target))
    else:
        datasets.Dataset(tables["train"]).save_to_disk(str(target))
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
