"""Latin prose in legacy code pages: the cases `tests/test_codepages.py` and `bench/codepages.py` share.

The texts are `tests/data/codepages/*.txt` (UTF-8 prose in 17 languages, see SOURCES.md there).
Each language is cut at several lengths (its first sentence, each sentence, its first paragraph, the
whole page of three paragraphs); held out from the development of the rule, "UDHR" is Article 1 of
the Universal Declaration of Human Rights in 11 of the languages (`udhr-article-1.tsv`, whole and
each sentence). Each is encoded in each code page its script is written in (Central
European: Windows-1250 and ISO-8859-2; Western: Windows-1252, ISO-8859-1 and ISO-8859-15). A
character the code page lacks is written the way such files write it (``–`` as ``-``, ``„”`` as
``"``, ``œ`` as ``oe``); the decoded text must equal that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "codepages"
CENTRAL = ("pl", "cs", "sk", "hu", "sl", "hr", "ro")
WESTERN = ("fr", "de", "es", "pt", "it", "nl", "da", "sv", "no", "fi")
CODEPAGES = {"central": ("cp1250", "iso8859_2"), "western": ("cp1252", "latin_1", "iso8859_15")}
LENGTHS = ("sentence", "paragraph", "page", "UDHR")
FALLBACK = str.maketrans({"–": "-", "—": "-", "„": '"', "“": '"', "”": '"', "’": "'", "«": '"', "»": '"'})
FALLBACK_WORDS = {"œ": "oe", "Œ": "OE"}


def udhr(lang: str) -> str | None:
    """Article 1 of the UDHR in that language, or None."""
    for line in (DATA / "udhr-article-1.tsv").read_text(encoding="utf-8").splitlines():
        code, _, text = line.partition("\t")
        if code == lang:
            return text
    return None


def cut(text: str, length: str) -> list[str]:
    """The first sentence ("sentence"), each sentence ("every sentence"), each word with an accented letter
    ("every word"), the first paragraph or the page; for "UDHR", ``text`` is the article, whole and each sentence."""
    if length == "UDHR":
        return [text, *re.split(r"(?<=[.!?])\s+", text)]
    if length == "every word":  # each distinct word with a letter beyond ASCII
        return sorted({w for w in re.findall(r"\w+", text) if not w.isascii()})
    if length == "page":
        return [text.strip()]
    paragraphs = text.strip().split("\n\n")
    if length == "paragraph":
        return paragraphs[:1]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p.strip())]
    return sentences if length == "every sentence" else sentences[:1]


def in_codepage(text: str, codec: str) -> str | None:
    """The text as a file in that code page would hold it, or None when its letters are not there."""
    try:
        text.encode(codec)
        return text
    except UnicodeEncodeError:
        pass
    plain = text.translate(FALLBACK)
    for ch, repl in FALLBACK_WORDS.items():
        plain = plain.replace(ch, repl)
    try:
        plain.encode(codec)
    except UnicodeEncodeError:
        return None
    return plain


def encoded_cases(lengths: tuple[str, ...] = LENGTHS) -> Iterator[tuple[str, str, str, str, bytes]]:
    """(language, length, codec, expected text, bytes), Central European languages first."""
    for family, languages in (("central", CENTRAL), ("western", WESTERN)):
        for lang in languages:
            page = (DATA / f"{lang}.txt").read_text(encoding="utf-8")
            for length in lengths:
                text = udhr(lang) if length == "UDHR" else page
                for piece in cut(text, length) if text else []:
                    for codec in CODEPAGES[family]:
                        expected = in_codepage(piece, codec)
                        if expected is not None:
                            yield lang, length, codec, expected, expected.encode(codec)
