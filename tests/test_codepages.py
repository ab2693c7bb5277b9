"""Latin text in a legacy code page is read in the right one: Central European (Windows-1250,
ISO-8859-2) as well as Western (Windows-1252, ISO-8859-1, ISO-8859-15), short texts included.

A Polish Windows-1250 file was read as Windows-1252 ("zażółć gęślą jaźń" as "za¿ó³æ gêœl¹ jaŸñ")
with no note, Czech, Slovak, Hungarian, Slovenian, Croatian and Romanian likewise; a Dutch paragraph
("één") and a Swedish sentence were read as Big5 and a Finnish page as Mac Icelandic; French
ISO-8859-15 "sœur" as "s½ur". The cases are prose in each language (`tests/codepage_cases.py`),
the same `bench/codepages.py` tabulates.
"""

from __future__ import annotations

import random

import pytest

from autodata.documents import load_documents
from autodata.documents.readers import decode
from codepage_cases import CENTRAL, encoded_cases

CASES = list(encoded_cases())
FAMILY = {"central": {"cp1250", "iso8859-2"}, "western": {"cp1252", "iso8859-15"}}


@pytest.mark.parametrize(
    ("lang", "length", "codec", "expected", "data"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES]
)
def test_prose_in_each_latin_code_page_is_read_right(lang, length, codec, expected, data):
    text, encoding, note = decode(data)
    assert text == expected
    family = FAMILY["central" if lang in CENTRAL else "western"]
    if expected.isascii():
        family = {"utf-8"}
    elif data.decode("cp1252", "replace") == data.decode("cp1250", "replace"):  # "é í á ö ü" alone: either
        family = FAMILY["central"] | FAMILY["western"]
    assert encoding in family
    assert note is None


def test_every_sentence_is_read_right_or_noted_as_ambiguous():
    """Each sentence alone (short texts: one or two accented letters decide): never silently wrong."""
    wrong = []
    for lang, _, codec, expected, data in encoded_cases(("every sentence",)):
        text, _, note = decode(data)
        if text != expected and not (note or "").startswith("code page ambiguous"):
            wrong.append((lang, codec, text))
    assert wrong == []


def test_a_word_alone_is_read_right_or_noted_as_ambiguous():
    """One word ("přes" or "pøes", "più" or "piů") is too little for py3langid to decide on: a tie below
    40 letters is always noted."""
    wrong = []
    for lang, _, codec, expected, data in encoded_cases(("every word",)):
        text, _, note = decode(data)
        if text != expected and not (note or "").startswith("code page ambiguous"):
            wrong.append((lang, codec, expected, text))
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "codec", "encoding"),
    [
        ("Zażółć gęślą jaźń, mówię. Łódź leży w Polsce.", "cp1250", "cp1250"),
        ("Zażółć gęślą jaźń, mówię. Łódź leży w Polsce.", "iso8859_2", "iso8859-2"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.", "cp1250", "cp1250"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.", "iso8859_2", "iso8859-2"),
        ("Árvíztűrő tükörfúrógép.", "cp1250", "cp1250"),
        ("Le café était fermé. L'élève naïve préfère l'hôtel près de la forêt.", "cp1252", "cp1252"),
        ("Ma sœur a payé 5 € pour un œuf.", "iso8859_15", "iso8859-15"),
        ("Ma sœur a payé 5 € pour un œuf.", "cp1252", "cp1252"),
        ("Grüße aus Köln: Straße, Mädchen, Öl.", "cp1252", "cp1252"),
        ("Blåbærsyltetøy på brødskiva.", "latin_1", "cp1252"),
    ],
)
def test_named_texts(text, codec, encoding):
    assert decode(text.encode(codec)) == (text, encoding, None)


def test_an_ambiguous_text_is_noted_in_the_document():
    """Slovak "už" in ISO-8859-2 is "uľ" in Windows-1250: both Slovak letters, no other accented letter
    to tell them apart. The reading taken is named, and the other, in the document's ``cleaned`` note."""
    sentence = "Dnes už nikto nespieva, ale susedia sa aj tak zastavia, ochutnajú a porozprávajú sa o úrode."
    _, _, note = decode(sentence.encode("iso8859_2"))
    assert note is not None and note.startswith("code page ambiguous: read as ")
    assert "Windows-1250" in note and "ISO-8859-2" in note and "'ž'" in note and "'ľ'" in note


def test_the_note_reaches_the_document_meta(tmp_path):
    sentence = "Dnes už nikto nespieva, ale susedia sa aj tak zastavia, ochutnajú a porozprávajú sa o úrode. "
    (tmp_path / "sk.txt").write_bytes((sentence * 3).encode("iso8859_2"))
    (tmp_path / "pl.txt").write_bytes(("Zażółć gęślą jaźń. Wszyscy ludzie rodzą się wolni. " * 5).encode("cp1250"))
    docs = {d.source.rsplit("/", 1)[-1]: d for d in load_documents([tmp_path])}
    assert docs["sk.txt"].meta["cleaned"].startswith("code page ambiguous")
    assert docs["pl.txt"].meta["encoding"] == "cp1250" and "cleaned" not in docs["pl.txt"].meta
    assert docs["pl.txt"].text.startswith("Zażółć gęślą jaźń.")


def test_a_file_no_code_page_reads_as_one_language_is_noted(tmp_path):
    """Polish Windows-1250 and French Windows-1252 in one file (a concatenation), UTF-8 followed by Russian
    Windows-1251, and random printable bytes: no Latin code page reads their accented letters as one
    language's alphabet, and the reading taken was mojibake ("Za¿ó³æ gêœl¹") with no note."""
    polish = ("Zażółć gęślą jaźń, wszyscy ludzie rodzą się wolni. " * 4).encode("cp1250")
    french = ("Crème brûlée à la française, déjà vu, naïve façade. " * 4).encode("cp1252")
    russian = ("Hello ünïcödé café. " * 3).encode() + ("Съешь же ещё этих мягких французских булок. " * 5).encode(
        "cp1251"
    )
    rng = random.Random(2)
    noise = bytes(rng.choice([*range(32, 127), *range(0xA0, 0x100)]) for _ in range(5000))
    for data in (polish + french, russian, noise):
        _, _, note = decode(data)
        assert note is not None and "code page unknown: read as " in note and "one language's alphabet" in note
    (tmp_path / "mixed.txt").write_bytes(polish + french)
    (tmp_path / "de.txt").write_bytes(  # one letter foreign to the language (é in German) is no mixture
        "Die Straße führt über die Brücke zum Café am Fluss. Größere Häuser stehen dort, und die Bäume blühen "
        "früh im Jahr. Müller öffnet täglich.".encode("cp1252")
    )
    docs = {d.source.rsplit("/", 1)[-1]: d for d in load_documents([tmp_path], min_chars=1)}
    assert docs["mixed.txt"].meta["cleaned"].startswith("code page unknown: read as Windows-1252, but only 70%")
    assert "cleaned" not in docs["de.txt"].meta and docs["de.txt"].text.startswith("Die Straße")
