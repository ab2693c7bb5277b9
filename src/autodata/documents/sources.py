"""Where documents come from: folders, globs, files, lists of them, and Hugging Face datasets.

``load_documents`` streams: it never holds more than one file's documents in memory, so a corpus
of any size can be read. Every input that does not become a document becomes a :class:`Skipped`
with a reason; a bad document never raises.
"""

from __future__ import annotations

import glob
import os
import re
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodata.documents.model import Document, Skipped, document_id
from autodata.documents.readers import ALL_FORMATS, Raw, ReadOptions, read_file, row_to_raw
from autodata.documents.seen import SeenIndex
from autodata.errors import UserError

if TYPE_CHECKING:
    from autodata.config import DocumentsConfig

HF_PREFIX = "hf://"
_SURROGATES = re.compile("[\ud800-\udfff]")
BATCH = 256  # documents of one file decided together (one transaction of the duplicate index)
BATCH_CHARS = 4_000_000  # ... or fewer, when their texts reach this many characters (memory read ahead)


def config_documents(
    docs: DocumentsConfig, *, index_dir: str | Path | None = None
) -> Generator[Document | Skipped, None, None]:
    """The documents a config's ``documents`` section names, read the way it says (one place, so every
    command that reads a corpus honours every setting). ``index_dir``: where the duplicate index's
    scratch file goes (:func:`load_documents`); only a command that holds the directory's lock gives one."""
    return load_documents(
        docs.paths,
        options=ReadOptions.of(docs),
        min_chars=docs.min_chars,
        hf_split=docs.hf_split,
        index_dir=index_dir,
    )


def count_inputs(docs: DocumentsConfig) -> int | None:
    """How many input items the corpus holds, counted cheaply (no file is parsed): one per file, one
    per non-blank JSONL line, Parquet rows from the file's footer, rows of a saved ``datasets``
    directory. An upper bound on the documents (short, duplicate and bad inputs are skipped later);
    None when it cannot be known without reading everything (a streamed Hub dataset)."""
    total = 0
    for spec in expand(docs.paths):
        if spec.startswith(HF_PREFIX + "disk:"):
            try:
                import datasets

                ds: Any = datasets.load_from_disk(spec[len(HF_PREFIX + "disk:") :])
                ds = ds[docs.hf_split] if isinstance(ds, datasets.DatasetDict) else ds
                total += len(ds)
            except Exception:  # the run itself reports what is wrong with it
                return None
            continue
        if spec.startswith(HF_PREFIX):
            return None
        suffix = Path(spec).suffix.lower()
        try:
            if ALL_FORMATS.get(suffix) == "jsonl":
                with open(spec, "rb") as fh:
                    total += sum(1 for line in fh if line.strip())
            elif ALL_FORMATS.get(suffix) == "parquet":
                import pyarrow.parquet as pq

                total += pq.ParquetFile(spec).metadata.num_rows
            else:
                total += 1
        except Exception:  # unreadable or corrupt: skipped by the run as one input
            total += 1
    return total


def check_inputs(inputs: Sequence[str | Path]) -> None:
    """Raise now the error ``expand`` would raise for a missing file or empty pattern, so a run with a
    typo in its paths fails before it writes anything (its run directory stays reusable)."""
    for item in inputs:
        if next(expand([item]), None) is None:  # only a folder can expand to nothing
            folder = Path(os.path.expanduser(str(item)))
            others = sum(len(files) for _, _, files in os.walk(folder))
            what = f"{others} files, none of a supported type" if others else "no files"
            raise UserError(
                f"documents: the folder {str(item)!r} holds {what}; supported: {', '.join(sorted(ALL_FORMATS))}"
            )


def expand(inputs: Sequence[str | Path], *, exclude: str | Path | None = None) -> Iterator[str]:
    """Each input as files (sorted, for a deterministic order) or an ``hf://`` / datasets-dir spec.
    Files that folders and glob patterns find under ``exclude`` (the run's own output directory, when
    ``--out`` lies inside a corpus folder) are left out: a run never reads its own examples back."""
    skip = Path(os.path.expanduser(str(exclude))).resolve() if exclude is not None else None

    def ours(found: str | Path) -> bool:
        return skip is not None and Path(found).resolve().is_relative_to(skip)

    for item in inputs:
        spec = str(item)
        if spec.startswith(HF_PREFIX):
            yield spec
            continue
        path = Path(os.path.expanduser(spec))
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "state.json").exists():
                yield HF_PREFIX + "disk:" + str(path)
                continue
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not ours(Path(root) / d))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in ALL_FORMATS:
                        yield str(Path(root) / name)
        elif any(ch in spec for ch in "*?["):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            if not matches:
                raise UserError(f"documents: the pattern {spec!r} matches no files")
            yield from (m for m in matches if Path(m).is_file() and not ours(m))
        elif path.is_file():
            yield str(path)
        else:
            raise UserError(f"documents: {spec!r} is not a file, folder, glob pattern or hf:// dataset")


def load_documents(
    inputs: Sequence[str | Path],
    *,
    options: ReadOptions | None = None,
    min_chars: int = 200,
    hf_split: str = "train",
    index_dir: str | Path | None = None,
) -> Generator[Document | Skipped, None, None]:
    """Documents in a stable order, skipping (with reasons) empty, short, duplicate and bad ones.

    A duplicate (the same id as a document read earlier anywhere in ``inputs``) is skipped naming the
    source of its first copy. The ids read so far are kept in a SQLite index (:class:`SeenIndex`), not
    on the Python heap: in ``index_dir`` (``autodata run`` gives its run directory) or in SQLite's
    temporary database; it is removed when the iteration ends or the iterator is closed. Within one
    file, documents are decided in batches (up to ``BATCH`` documents or ``BATCH_CHARS`` characters of
    text read ahead), which changes nothing in what is yielded or its order.
    Raises :class:`UserError` when the index cannot be created."""
    opts = options or ReadOptions()
    try:
        index = SeenIndex(index_dir)
    except (OSError, sqlite3.Error) as exc:
        where = index_dir if index_dir is not None else "the temporary directory"
        raise UserError(f"documents: cannot create the duplicate index in {where}: {exc}") from None
    try:
        for spec in expand(inputs, exclude=index_dir):
            raws: Iterable[Raw | Skipped]
            if spec.startswith(HF_PREFIX):
                raws = _hf(spec[len(HF_PREFIX) :], opts, hf_split)
            else:
                raws = read_file(Path(spec), opts)
            pending: list[Skipped | tuple[Raw, str, str]] = []  # read, not yet yielded, in order
            batch: list[tuple[str, str]] = []  # (id, source) of the documents among them
            chars = 0
            items = iter(raws)
            while True:
                try:
                    raw = next(items)
                except StopIteration:
                    break
                except Exception:  # what was read before the error is yielded first, as when read one by one
                    yield from _decided(pending, index.first_copies(batch))
                    raise
                item = _candidate(raw, min_chars)
                if isinstance(item, Skipped) and not pending:
                    yield item
                    continue
                pending.append(item)
                if isinstance(item, Skipped):
                    continue
                batch.append((item[2], item[0].source))
                chars += len(item[1])
                if len(batch) >= BATCH or chars >= BATCH_CHARS:
                    yield from _decided(pending, index.first_copies(batch))
                    pending, batch, chars = [], [], 0
            if pending:  # the end of a file: its last documents are not held back for the next file's
                yield from _decided(pending, index.first_copies(batch))
    finally:
        index.close()


def _candidate(raw: Raw | Skipped, min_chars: int) -> Skipped | tuple[Raw, str, str]:
    """A raw input as a skip (a reader's, empty, too short) or as a document to be: (raw, text, id)."""
    if isinstance(raw, Skipped):
        return raw
    raw = _without_lone_surrogates(raw)
    text = raw.text.strip()
    if not text:
        return Skipped(raw.source, "empty", "no text")
    if len(text) < min_chars:
        return Skipped(raw.source, "too_short", f"{len(text)} characters; at least {min_chars} are needed")
    return raw, text, document_id(text)


def _decided(pending: list[Skipped | tuple[Raw, str, str]], firsts: list[str | None]) -> Iterator[Document | Skipped]:
    """``pending`` in order, each document to be made a :class:`Document`, or a duplicate skip when
    ``firsts`` (one entry per document to be, from :meth:`SeenIndex.first_copies`) names its first copy."""
    decisions = iter(firsts)
    for item in pending:
        if isinstance(item, Skipped):
            yield item
            continue
        raw, text, doc_id = item
        first = next(decisions)
        if first is not None:
            yield Skipped(raw.source, "duplicate", f"same text as {first}")
        else:
            yield Document(id=doc_id, source=raw.source, title=raw.title, text=text, format=raw.format, meta=raw.meta)


def _without_lone_surrogates(raw: Raw) -> Raw:
    """Lone UTF-16 surrogates (a JSON ``"\\ud83d"`` escape, half an emoji) cannot be encoded as UTF-8, so no
    store, hash or server could take the text: each is replaced by U+FFFD and the repair is noted in
    ``meta['cleaned']`` (shown in the document's episode)."""
    if _SURROGATES.search(raw.text) is None and _SURROGATES.search(raw.title) is None:
        return raw
    bad = len(_SURROGATES.findall(raw.text))
    fix = _SURROGATES.sub("\ufffd", raw.text), _SURROGATES.sub("\ufffd", raw.title)
    note = f"{bad} lone UTF-16 surrogate(s) replaced by U+FFFD" if bad else "lone surrogates in the title replaced"
    return Raw(raw.source, fix[1], fix[0], raw.format, {**raw.meta, "cleaned": note})


def _hf(spec: str, opts: ReadOptions, split: str) -> Iterator[Raw | Skipped]:
    """``hf://name[:config]`` from the hub (needs network and the ``hf`` extra), or a saved datasets dir."""
    try:
        import datasets
    except ImportError:
        raise UserError("reading Hugging Face datasets needs the optional extra: pip install 'autodata[hf]'") from None
    if spec.startswith("disk:"):
        where = spec[len("disk:") :]
        ds: Any = datasets.load_from_disk(where)
        label = where
    else:
        name, _, config = spec.partition(":")
        label = HF_PREFIX + spec
        try:
            ds = datasets.load_dataset(name, config or None, split=split, streaming=True)
        except Exception as exc:  # hub errors come in many types
            raise UserError(f"documents: cannot load dataset {label!r}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise UserError(f"documents: {label} has no split {split!r}; splits: {', '.join(ds)}")
        ds = ds[split]
    for i, row in enumerate(ds):
        yield row_to_raw(f"{label}#{i}", row, opts, "hf")
