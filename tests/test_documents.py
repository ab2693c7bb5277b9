"""Loading documents from every supported source; bad documents skipped with reasons; the budget rule."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from autodata.documents import ReadOptions, Skipped, document_id, fit_text, fit_to_budget, load_documents
from autodata.documents.budget import CHARS_PER_TOKEN, GAP, ancestors, split_sections
from autodata.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"
PARA = "This paragraph explains a finding about the method in enough words to count as a real text. " * 3


def split(results):
    docs = [r for r in results if not isinstance(r, Skipped)]
    skipped = [r for r in results if isinstance(r, Skipped)]
    return docs, skipped


def test_example_corpus_loads_every_file_with_titles():
    docs, skipped = split(list(load_documents([CORPUS])))
    assert skipped == []
    files = [f for f in CORPUS.rglob("*") if f.is_file()]
    assert len(docs) == len(files) >= 30  # every file is one document
    by_name = {Path(d.source).name: d for d in docs}
    assert by_name["pep-0572.rst"].title == "Assignment Expressions"
    assert by_name["arxiv-2212.11770.md"].title.startswith("S-Graphs+: Real-time Localization")
    pdf = by_name["acl-n18-3011-literature-graph-in-semantic-scholar.pdf"]
    assert pdf.format == "pdf" and pdf.meta["pages"] >= 5 and "Semantic Scholar" in pdf.text
    assert {d.format for d in docs} == {"md", "rst", "txt", "pdf"}
    # stable order and ids: a second pass gives the same sequence
    again, _ = split(list(load_documents([CORPUS])))
    assert [d.id for d in again] == [d.id for d in docs]


def test_ids_come_from_content_not_path_or_wrapping(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha beta gamma.\nDelta " + PARA)
    (tmp_path / "b.md").write_text("Alpha   beta gamma. Delta\n\n" + PARA)
    docs, skipped = split(list(load_documents([tmp_path])))
    assert len(docs) == 1 and docs[0].id == document_id("Alpha beta gamma. Delta " + PARA)
    assert skipped[0].reason == "duplicate" and "a.txt" in skipped[0].detail


def test_bad_documents_are_skipped_with_reasons(tmp_path):
    (tmp_path / "good.txt").write_text("A good document. " + PARA)
    (tmp_path / "empty.txt").write_text("   \n\n")
    (tmp_path / "short.md").write_text("# Hi\nToo short.")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00" + bytes(range(256)))
    (tmp_path / "latin.txt").write_bytes(("Caf\xe9 r\xe9sum\xe9 " + PARA).encode("cp1252"))
    (tmp_path / "garbage.txt").write_bytes(bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D]) * 100)
    (tmp_path / "big.txt").write_text("x" * 5000)
    (tmp_path / "copy.txt").write_text("A good document. " + PARA)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    results = list(
        load_documents(
            [
                tmp_path / "good.txt",
                tmp_path / "empty.txt",
                tmp_path / "short.md",
                tmp_path / "binary.txt",
                tmp_path / "latin.txt",
                tmp_path / "garbage.txt",
                tmp_path / "big.txt",
                tmp_path / "copy.txt",
                tmp_path / "broken.pdf",
                tmp_path / "notes.docx",
            ],
            options=ReadOptions(max_bytes=4000),
        )
    )
    docs, skipped = split(results)
    assert [Path(d.source).name for d in docs] == ["good.txt", "latin.txt"]
    assert docs[1].meta["encoding"] == "cp1252" and "Café résumé" in docs[1].text
    reasons = {Path(s.source).name: (s.reason, s.detail) for s in skipped}
    assert reasons["empty.txt"] == ("empty", "no text")
    assert reasons["short.md"][0] == "too_short" and "at least 200" in reasons["short.md"][1]
    assert reasons["binary.txt"][0] == "binary"
    assert reasons["garbage.txt"][0] == "undecodable"
    assert (
        reasons["big.txt"] == ("oversized", "0.0 MB is over the 0.0 MB limit") or reasons["big.txt"][0] == "oversized"
    )
    assert reasons["copy.txt"][0] == "duplicate"
    assert reasons["broken.pdf"][0] == "corrupt"
    assert reasons["notes.docx"][0] == "unsupported" and ".pdf" in reasons["notes.docx"][1]


def test_html_drops_scripts_and_keeps_title(tmp_path):
    (tmp_path / "page.html").write_text(
        "<html><head><title>Field Guide</title><script>alert('x')</script><style>p{}</style></head>"
        f"<body><h1>Field Guide</h1><p>{PARA}</p><p>Second <b>bold</b> part.</p></body></html>"
    )
    docs, _ = split(list(load_documents([tmp_path / "page.html"])))
    assert docs[0].title == "Field Guide"
    assert "alert" not in docs[0].text and "p{}" not in docs[0].text
    assert "Second\nbold\npart." in docs[0].text or "Second bold part." in docs[0].text


def test_jsonl_rows_with_fields_and_bad_lines(tmp_path):
    rows = [
        json.dumps({"body": "First " + PARA, "name": "One", "key": 7}),
        "{oops",
        json.dumps({"text": "wrong field"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"body": "Second " + PARA}),
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n")
    opts = ReadOptions(text_field="body", title_field="name", id_field="key")
    docs, skipped = split(list(load_documents([tmp_path / "d.jsonl"], options=opts)))
    assert [d.title for d in docs] == ["One", docs[1].title] and docs[0].meta["external_id"] == "7"
    assert [(s.source.rsplit(":", 1)[1], s.reason) for s in skipped] == [
        ("2", "bad_json"),
        ("3", "no_text_field"),
        ("4", "bad_json"),
    ]


def test_parquet_streams_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": [f"Row {i}. " + PARA for i in range(600)], "title": [f"T{i}" for i in range(600)]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=100)
    docs, skipped = split(list(load_documents([tmp_path / "d.parquet"])))
    assert len(docs) == 600 and not skipped
    assert docs[599].title == "T599" and docs[599].source.endswith("d.parquet#599")
    docs, skipped = split(list(load_documents([tmp_path / "d.parquet"], options=ReadOptions(text_field="body"))))
    assert not docs and skipped[0].reason == "no_text_field" and "columns: text, title" in skipped[0].detail


def test_local_datasets_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": [f"Doc {i}. " + PARA for i in range(5)], "title": list("abcde")})
    ds.save_to_disk(str(tmp_path / "ds"))
    docs, skipped = split(list(load_documents([tmp_path / "ds"])))
    assert [d.title for d in docs] == list("abcde") and not skipped
    assert docs[0].format == "hf" and "#0" in docs[0].source


def test_globs_and_missing_inputs(tmp_path):
    docs, _ = split(list(load_documents([str(CORPUS / "peps" / "*.rst")])))
    assert len(docs) == 14
    with pytest.raises(UserError, match="matches no files"):
        list(load_documents([str(tmp_path / "*.md")]))
    with pytest.raises(UserError, match="is not a file, folder, glob pattern"):
        list(load_documents([tmp_path / "nope"]))


# ------------------------------------------------------------------------------------ the budget


def corpus_doc(name: str):
    docs, _ = split(list(load_documents([next(CORPUS.rglob(name))])))
    return docs[0]


def test_short_document_is_unchanged():
    doc = corpus_doc("pep-0020.rst")
    assert fit_to_budget(doc, 5000) is doc


@pytest.mark.parametrize("tokens", [800, 2000, 6000])
def test_paper_keeps_title_abstract_introduction_first(tokens):
    doc = corpus_doc("arxiv-2212.11770.md")
    cut = fit_to_budget(doc, tokens)
    assert len(cut.text) <= tokens * CHARS_PER_TOKEN
    record = cut.meta["cut"]
    assert record["rule"] == "sections" and record["original_chars"] == len(doc.text)
    assert cut.text.startswith("# S-Graphs+")
    assert "## Abstract" in cut.text
    assert record["kept"][:2] == [
        "S-Graphs+: Real-time Localization and Mapping leveraging Hierarchical Representations",
        "Abstract",
    ]
    if tokens >= 2000:
        assert "## 1 Introduction" in cut.text
    assert "References" not in record["kept"]
    assert GAP in cut.text


def test_kept_sections_stay_in_document_order_with_gaps_marked():
    text = "\n\n".join(
        [
            "# Title",
            "Authors here.",
            "## Related Work",
            "R " * 400,
            "## Method",
            "M " * 300,
            "## Abstract",
            "A " * 100,
            "## References",
            "ref " * 300,
        ]
    )
    cut, record = fit_text(text, 400)
    assert record["kept"] == ["Title", "Related Work", "Method", "Abstract"]
    assert cut.index("## Method") < cut.index("## Abstract")
    assert "## References" not in cut
    assert record["partial"] == "Related Work"
    assert cut.count(GAP) >= 2


def test_plain_text_keeps_head_and_tail():
    text = "\n".join(f"Line {i} of the opinion, with its reasoning." for i in range(2000))
    cut, record = fit_text(text, 1000)
    assert record["rule"] == "head_and_tail"
    head, tail = cut.split(GAP)
    assert head.startswith("Line 0 ") and tail.rstrip().endswith("Line 1999 of the opinion, with its reasoning.")
    assert len(head) > 2 * len(tail) and len(cut) <= 1000 * CHARS_PER_TOKEN + 10


def test_section_splitting_recognises_heading_styles():
    text = (
        "Intro words.\n\nAbstract\n========\n\nrst body.\n\n2.1 Proposed Method\n\nbody\n\n"
        "PROCEDURAL HISTORY\n\nlegal body\n\n## Results\n\nmd body"
    )
    headings = [s.heading for s in split_sections(text)]
    assert headings == ["", "Abstract", "2.1 Proposed Method", "PROCEDURAL HISTORY", "Results"]
    kinds = [s.kind for s in split_sections(text)]
    assert kinds == ["preamble", "abstract", "method", "other", "other"]


def test_jsonl_streams_rows_and_applies_the_size_limit_per_row(tmp_path):
    rows = [{"text": f"Row {i}. " + PARA} for i in range(10)] + [{"text": "Huge. " + "x" * 5000}]
    (tmp_path / "big.jsonl").write_bytes(
        b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in rows).encode() + b"\n\xff\xfe not utf-8\n"
    )
    opts = ReadOptions(max_bytes=3000)  # the file is ~9 kB: over the limit as a whole, rows are not
    docs, skipped = split(list(load_documents([tmp_path / "big.jsonl"], options=opts)))
    assert len(docs) == 10 and docs[0].text.startswith("Row 0.")
    assert sorted(s.reason for s in skipped) == ["oversized", "undecodable"]
    assert skipped[0].source.endswith(":11") or skipped[1].source.endswith(":11")


def test_every_command_reads_the_corpus_with_every_documents_setting(monkeypatch):
    """run and optimize both read through config_documents: the split, fields and limits all apply."""
    from autodata.config import DocumentsConfig
    from autodata.documents import sources

    seen = {}

    def fake(inputs, *, options, min_chars, hf_split, index_dir):
        seen.update(inputs=list(inputs), options=options, min_chars=min_chars, hf_split=hf_split, index_dir=index_dir)
        return iter(())

    monkeypatch.setattr(sources, "load_documents", fake)
    d = DocumentsConfig(paths=["hf://org/set"], hf_split="validation", text_field="body", min_chars=10)
    assert list(sources.config_documents(d, index_dir="runs/x")) == []
    assert seen["hf_split"] == "validation" and seen["min_chars"] == 10 and seen["options"].text_field == "body"
    assert seen["index_dir"] == "runs/x"
    import inspect

    from autodata.loop import run
    from autodata.meta import optimizer

    for module in (run, optimizer):  # neither reads documents any other way
        assert " load_documents(" not in inspect.getsource(module)


def test_the_row_size_limit_is_the_same_for_every_row_source():
    """JSONL, Parquet and Hugging Face rows all become documents through row_to_raw, which holds the limit."""
    from autodata.documents.model import Skipped
    from autodata.documents.readers import ReadOptions, row_to_raw

    opts = ReadOptions(max_bytes=100)
    assert isinstance(row_to_raw("hf://x#0", {"text": "a" * 100}, opts, "hf"), Skipped) is False
    big = row_to_raw("hf://x#1", {"text": "a" * 101}, opts, "hf")
    assert isinstance(big, Skipped) and big.reason == "oversized"


def test_kept_subsections_bring_their_parents_headings_and_an_outline_of_what_was_left_out():
    """Nine "Methodology" subsections kept without the tool headings above them said nothing of
    which tool each described (arxiv-2212.11774, a survey of bug-localization tools)."""
    doc = corpus_doc("arxiv-2212.11774.md")
    cut = fit_to_budget(doc, 6000)
    record = cut.meta["cut"]
    assert len(cut.text) <= 6000 * CHARS_PER_TOKEN
    sections = split_sections(cut.text.rsplit("\n\n[Left out:", 1)[0])
    methodology = [s for s in sections if s.heading == "Methodology"]
    assert len(methodology) >= 5
    for m in methodology:  # each one sits under the heading of the tool it describes
        parent = sections[ancestors(sections)[m.index][-1]]
        assert parent.level == m.level - 1 and parent.heading not in ("Methodology", "")
    assert record["headings_only"] and "BLUiR [10]" in record["headings_only"]
    assert "### BLUiR [10]\n\n[…]\n\n#### Methodology" in cut.text
    outline = record["outline"]
    assert cut.text.endswith(outline) and outline.startswith("[Left out: ")
    assert "References" in outline or "more]" in outline
    assert not outline.startswith("[Left out: A literature review")  # the title is not repeated in every path


def test_heading_levels_follow_each_style():
    text = (
        "Title\n=====\n\nintro\n\nPart\n----\n\nbody\n\nSub\n~~~\n\nbody\n\n"
        "## Two\n\nx\n\n### Three\n\ny\n\n2.1 Numbered Sub\n\nz\n\nPROCEDURAL HISTORY\n\nw"
    )
    levels = [(s.heading, s.level) for s in split_sections(text)]
    assert levels == [
        ("Title", 1),
        ("Part", 2),
        ("Sub", 3),
        ("Two", 2),
        ("Three", 3),
        ("2.1 Numbered Sub", 2),
        ("PROCEDURAL HISTORY", 1),
    ]
    parents = ancestors(split_sections(text))
    assert parents[2] == [0, 1] and parents[4] == [0, 3] and parents[6] == []


def test_utf8_with_a_few_bad_bytes_is_not_reread_as_windows_1252_mojibake(tmp_path):
    """A UTF-8 file with one surrogate written as bytes (Python's surrogatepass, Java's modified UTF-8)
    or cut inside a character was decoded as Windows-1252: the whole document became "cafÃ©"."""
    words = "Le café était fermé. Ελληνικά και 中文. "
    (tmp_path / "wtf8.txt").write_bytes(
        (words + "\ud83d broken, \ud83d\ude00 whole. " + PARA).encode("utf-8", "surrogatepass")
    )
    (tmp_path / "cut.md").write_bytes((words + PARA).encode() + "中".encode()[:2] + b" tail")
    (tmp_path / "stray.txt").write_bytes(words.encode() + b"\xff " + PARA.encode())
    docs = {Path(d.source).name: d for d in load_documents([tmp_path])}
    for name in ("wtf8.txt", "cut.md", "stray.txt"):
        assert docs[name].text.startswith(words.strip()), name
        assert docs[name].meta["encoding"] == "utf-8"
    assert "\U0001f600 whole" in docs["wtf8.txt"].text and "\ufffd broken" in docs["wtf8.txt"].text
    assert docs["wtf8.txt"].meta["cleaned"] == "1 lone UTF-16 surrogate(s) replaced by U+FFFD"
    assert docs["cut.md"].meta["cleaned"] == "1 invalid UTF-8 byte sequence(s) replaced by U+FFFD"
    assert docs["cut.md"].text.endswith("\ufffd tail")
    assert docs["stray.txt"].meta["cleaned"] == "1 invalid UTF-8 byte sequence(s) replaced by U+FFFD"


RU = "Съешь же ещё этих мягких французских булок, да выпей чаю. Метод читает документы и пишет вопросы. " * 3
LEGACY = [
    ("ru-1251.txt", RU, "cp1251"),
    ("ru-koi8.txt", RU, "koi8-r"),
    ("el-1253.txt", "Αυτό είναι ένα ελληνικό έγγραφο. Η μέθοδος διαβάζει έγγραφα και γράφει ερωτήσεις. " * 3, "cp1253"),
    (
        "ja-sjis.txt",
        "これは日本語の文書です。方法は文書を読み、質問を書きます。訓練のためのデータを作ります。" * 3,
        "shift_jis",
    ),
    ("zh-gb.txt", "这是一个中文文档。该方法读取文档并为训练编写问题。我们需要高质量的数据。" * 3, "gb18030"),
]


@pytest.mark.parametrize(("name", "text", "codec"), LEGACY, ids=[n for n, _, _ in LEGACY])
def test_legacy_code_pages_of_other_scripts_are_detected_not_read_as_windows_1252(name, text, codec):
    """A Cyrillic, Greek, Japanese or Chinese file saved in its legacy code page was read as
    Windows-1252 mojibake ("Ñúåøü"); charset-normalizer finds its code page."""
    from autodata.documents.readers import decode

    got, encoding, note = decode(text.encode(codec))
    assert got == text and note is None
    assert codecs.lookup(encoding).name in {codecs.lookup(codec).name, codecs.lookup("cp932").name}


def test_latin_text_in_windows_1252_stays_windows_1252():
    """The detector reads short French Windows-1252 text as Windows-1250 ("élève" as "ělčve"); a Latin
    script keeps Windows-1252."""
    from autodata.documents.readers import decode

    text = "Le café était fermé. L'élève naïve préfère l'hôtel près de la forêt où ils déjeunent. " * 3
    assert decode(text.encode("cp1252")) == (text, "cp1252", None)
