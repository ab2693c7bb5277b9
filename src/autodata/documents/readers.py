"""Readers: one file in, raw documents (or reasons to skip) out.

Text formats are decoded as UTF-8, falling back to a legacy code page only when the result reads as
text (many legal and government files are still in one): a Latin one (Windows-1252, ISO-8859-15,
Windows-1250, ISO-8859-2) chosen by the alphabet its letters fit, or a non-Latin one charset-normalizer
finds; anything else is skipped as undecodable rather than decoded into mojibake. PDF text comes
from ``pypdf``, HTML text from BeautifulSoup.
"""

from __future__ import annotations

import codecs
import json
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodata.documents.model import SkipDocument, Skipped

if TYPE_CHECKING:
    from autodata.config import DocumentsConfig

TEXT_FORMATS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".rst": "rst"}
ALL_FORMATS = {**TEXT_FORMATS, ".pdf": "pdf", ".html": "html", ".htm": "html", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(slots=True)
class Raw:
    source: str
    title: str
    text: str
    format: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    text_field: str = "text"
    title_field: str = "title"
    id_field: str | None = None
    max_bytes: int = 20_000_000

    @classmethod
    def of(cls, docs: DocumentsConfig) -> ReadOptions:
        """The reading options a config's ``documents`` section asks for."""
        return cls(text_field=docs.text_field, title_field=docs.title_field, id_field=docs.id_field,
                   max_bytes=docs.max_bytes)  # fmt: skip


def decode(data: bytes) -> tuple[str, str, str | None]:
    """(text, encoding, repair note or None). Raises SkipDocument for binary or undecodable bytes,
    and for a decoding of any encoding (UTF-8 included) that is more than 1 % control characters.

    UTF-16 and UTF-32 text is recognised by its byte-order mark (what Windows editors write as
    "Unicode"); without one, NUL bytes mean a binary file. Text that is UTF-8 but for a few bad
    spots stays UTF-8 (never the whole document re-read as Windows-1252 mojibake, "cafÃ©"):
    surrogates written as UTF-8 bytes (CESU-8 / WTF-8, what Java's modified UTF-8 and Python's
    ``surrogatepass`` write) are read back, pairs joined into their character, lone ones left for the
    loader to replace and note; other invalid sequences (a file cut inside a character, a stray byte)
    become U+FFFD with a note, when the file has more valid non-ASCII UTF-8 characters than invalid
    sequences. Legacy code pages are tried only for text without that evidence of UTF-8: a Latin
    reading whose accented letters are one language's alphabet first (`_legacy_latin`), then a
    non-Latin script charset-normalizer finds (`_legacy_non_latin`), then the best Latin reading. A
    Latin text that two code pages read equally well is noted ("code page ambiguous: ...")."""
    text, encoding, note = _decode(data)
    if not _looks_like_text(text):  # valid UTF-8 can be all control bytes: valid, but not a document
        raise SkipDocument("binary", f"read as {encoding}, but over 1 % of it is control characters: not text")
    return text, encoding, note


def _decode(data: bytes) -> tuple[str, str, str | None]:
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            try:
                return data.decode(codec), codec, None
            except UnicodeDecodeError as exc:
                raise SkipDocument(
                    "undecodable", f"starts with a {codec} byte-order mark but is not {codec}: {exc.reason}"
                ) from None
    head = data[:8192]
    if b"\x00" in head:
        if len(head) >= 64 and any(_utf16_ascii(head[i::2], head[1 - i :: 2]) for i in (0, 1)):
            raise SkipDocument(  # ASCII letters in UTF-16 have a NUL every other byte
                "binary", "looks like UTF-16 text without a byte-order mark: save it as UTF-8 (or UTF-16 with a BOM)"
            )
        raise SkipDocument("binary", "contains NUL bytes: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig"), "utf-8", None
    except UnicodeDecodeError as exc:
        first_error = exc
    try:  # surrogates encoded as bytes: a pair is one character written the UTF-16 way
        text = data.decode("utf-8-sig", "surrogatepass")
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass"), "utf-8", None
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8-sig", "replace")
    genuine = data.count("\ufffd".encode())  # U+FFFD the file itself holds
    bad = lenient.count("\ufffd") - genuine
    valid = sum(1 for ch in lenient if ord(ch) > 127) - bad - genuine
    if valid > bad:
        return lenient, "utf-8", f"{bad} invalid UTF-8 byte sequence(s) replaced by U+FFFD"
    readings = _latin_readings(data)
    if not any(r.fit() >= 1.0 for r in readings):  # a Latin reading in one language's alphabet goes first
        detected = _legacy_non_latin(data)
        if detected is not None:
            return detected
    if readings:
        return _legacy_latin(readings)
    raise SkipDocument(
        "undecodable",
        f"not UTF-8 (byte {first_error.start}: {data[first_error.start : first_error.start + 1]!r}) "
        "nor text in a legacy code page",
    )


def _legacy_non_latin(data: bytes) -> tuple[str, str, None] | None:
    """(text, encoding, None) when charset-normalizer reads non-UTF-8 bytes as a non-Latin script
    (Windows-1251 or KOI8-R Cyrillic, Windows-1253 Greek, Shift-JIS, GB18030, Big5, EUC-KR, ...), else None.

    Only its non-Latin answers are taken: between the Latin code pages `_legacy_latin` decides. Its
    answer is not taken when most letters of the result are still ASCII Latin letters: a Latin text
    with a few accented letters reads as a few Big5 characters among Latin words (Dutch "één" as
    "澭n", Croatian "šeću" as "塄獘"), or as letters of another script inside Latin words (Finnish
    "järviä" in Mac Icelandic as "j‰rvi‰"); text in a non-Latin script is mostly written in it. Nor is
    it taken for text without word or sentence breaks (spaces, punctuation) in at least 1 % of its
    characters: random bytes decode as some code page's letters too (five bytes repeated read as
    Korean in CP949)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is None:
        return None
    try:
        text = data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    sample = text[:20000]
    letters = [ch for ch in sample if ch.isalpha()]
    non_latin = sum(1 for ch in letters if ord(ch) > 127 and not unicodedata.name(ch, "").startswith("LATIN"))
    breaks = sum(1 for ch in sample if ch.isspace() or unicodedata.category(ch).startswith("P"))
    if non_latin * 2 <= len(letters) or breaks * 100 < len(sample) or not _looks_like_text(text):
        return None  # Latin script, or no word or sentence breaks: not prose (bytes a code page happens to map)
    return text, codecs.lookup(best.encoding).name, None


# The Latin code pages a legacy file is read in, in the order a tie goes: Western (Windows-1252, a
# superset of ISO-8859-1's printable characters, and ISO-8859-15 with € œ š ž) and Central European
# (Windows-1250 and ISO-8859-2).
LATIN_CODE_PAGES = ("cp1252", "iso8859-15", "cp1250", "iso8859-2")
CODE_PAGE_NAMES = {"cp1252": "Windows-1252", "iso8859-15": "ISO-8859-15", "cp1250": "Windows-1250",
                   "iso8859-2": "ISO-8859-2"}  # fmt: skip
# The letters beyond ASCII of each language written in those code pages, lower case, by the ISO
# 639-1 code py3langid gives (Romanian with the cedilla ş ţ those code pages have as well as the
# comma-below ș ț of Unicode).
ALPHABETS = {
    "pl": "ąćęłńóśźż",
    "cs": "áčďéěíňóřšťúůýž",
    "sk": "áäčďéíĺľňóôŕšťúýž",
    "hu": "áéíóöőúüű",
    "sl": "čšžćđ",
    "hr": "čćđšž",
    "bs": "čćđšž",
    "sr": "čćđšž",
    "ro": "ăâîşţșț",
    "sq": "çë",
    "de": "äöüß",
    "lb": "äëéöü",
    "fr": "àâæçéèêëîïôœùûüÿ",
    "es": "áéíñóúü",
    "gl": "áéíñóúü",
    "eu": "ñü",
    "pt": "áâãàçéêíóôõúü",
    "it": "àèéìíîòóùú",
    "ca": "àçèéíïòóúü",
    "nl": "áàéèëïóöüíú",
    "af": "áéèêëíîïóôöúûü",
    "da": "æøåé",
    "no": "æøåéôò",
    "nb": "æøåéôò",
    "nn": "æøåéôò",
    "sv": "åäöé",
    "fi": "äöåšž",
    "et": "äöõüšž",
    "is": "áðéíóúýþæö",
    "fo": "áðíóúýæø",
    "ga": "áéíóú",
    "en": "éï",
}
_ALPHABET_SETS = {code: frozenset(letters) for code, letters in ALPHABETS.items()}
# inside a word these are not a misread letter: soft hyphen, dashes, quotes and apostrophes
_WORD_PUNCTUATION = {"Cf", "Pd", "Pi", "Pf"}
# py3langid's log-probability, per character the readings differ in, by which the reading taken must
# beat another that fits as well, or the note says both were possible (measured: a wrong reading won
# by 5.5 for its one differing letter, Slovak "uľ" for "už"; right ones by up to 34)
AMBIGUOUS_MARGIN = 10.0
# below this many letters py3langid's language and probabilities decide nothing without a note
# (measured on single words: "přes" taken as "pøes", "più" as "piů")
SURE_LETTERS = 40
# below this share of its accented letters in one language's alphabet, the best Latin reading is noted:
# no code page reads the text as one language (measured: Polish Windows-1250 and French Windows-1252 in
# one file, best 70 %; UTF-8 and Windows-1251 in one file, 45 %; random printable bytes, 38 %; the
# prose of `tests/data/codepages` in its own code page, 100 %; two German sentences with one "Café", 93 %)
MIXED_FIT = 0.9


@dataclass(frozen=True, slots=True)
class _Reading:
    """One code page's reading of the bytes: its letters beyond ASCII (lower case, with counts) and
    how many characters look misread (C1 controls anywhere; symbols touching a letter, "ma³ej",
    "c½ur", "¹eæu"; other punctuation between two letters, "mo¿e")."""

    codec: str
    text: str
    letters: dict[str, int]
    misread: int

    def fit(self, language: str | None = None) -> float:
        """Share of the accented letters and misread characters that are letters of ``language``'s
        alphabet (of the best-fitting alphabet when None); 1.0 for text without any."""
        total = sum(self.letters.values()) + self.misread
        if total == 0:
            return 1.0
        if language is not None and language not in _ALPHABET_SETS:
            return 0.0
        alphabets = _ALPHABET_SETS.values() if language is None else [_ALPHABET_SETS[language]]
        return max(sum(n for ch, n in self.letters.items() if ch in alphabet) for alphabet in alphabets) / total


def _read_as(data: bytes, codec: str) -> _Reading | None:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    sample = text[:50000]
    letters: dict[str, int] = {}
    misread = 0
    for i, ch in enumerate(sample):
        if ord(ch) < 128:
            continue
        if ch.isalpha():
            low = ch.lower()
            letters[low] = letters.get(low, 0) + 1
        elif 0x80 <= ord(ch) < 0xA0:
            misread += 1
        else:
            before = i > 0 and sample[i - 1].isalpha()
            after = i < len(sample) - 1 and sample[i + 1].isalpha()
            kind = unicodedata.category(ch)
            if (kind[0] in "SN" and (before or after)) or (before and after and kind not in _WORD_PUNCTUATION):
                misread += 1
    return _Reading(codec, text, letters, misread)


def _latin_readings(data: bytes) -> list[_Reading]:
    """The readings of the bytes in each of `LATIN_CODE_PAGES` that decode and read as text."""
    readings = [r for r in (_read_as(data, codec) for codec in LATIN_CODE_PAGES) if r is not None]
    return [r for r in readings if _looks_like_text(r.text)]


def _mixed_note(codec: str, fit: float) -> str | None:
    """The note for a Latin reading (in ``codec``) whose best fit to one alphabet is under `MIXED_FIT`, else None."""
    if fit >= MIXED_FIT:
        return None
    return (
        f"code page unknown: read as {CODE_PAGE_NAMES[codec]}, but only {fit:.0%} of its accented letters belong "
        "to one language's alphabet (the file may mix code pages, or not be text)"
    )


def _legacy_latin(readings: list[_Reading]) -> tuple[str, str, str | None]:
    """(text, encoding, note or None): the reading of bytes in a Latin code page to take (``readings``
    from `_latin_readings`, not empty). A reading whose accented letters all belong to one
    language's alphabet also goes before charset-normalizer's non-Latin answer (`_legacy_non_latin`:
    "Łódź." read as Ukrainian CP1125, "гґdЯ.").

    Each of `LATIN_CODE_PAGES` decodes the bytes, and the reading whose letters beyond ASCII belong
    to one language's alphabet (`ALPHABETS`) is taken: Polish Windows-1250 read as Windows-1252 puts
    symbols inside words ("ma³ej", "gêœl¹") and mixes letters no language has together (ê æ ñ);
    Czech read so has "ì" and "ø" beside "ý"; French read as Windows-1250 has "č" and "ŕ" beside "é".
    The score is the share of accented letters and misread characters that fit the best-fitting
    alphabet. Readings that differ but fit equally well (a short text whose only accented letter is
    "ø" or "ř", "è" or "č", "õ" or "ő") are told apart by py3langid, which ships an n-gram model of
    97 languages: first the reading whose letters all belong to the language py3langid finds in it,
    then the one with more letters of that language (Slovak "jednať" over "jedna»"), then the one it
    finds more probable; when neither wins by `AMBIGUOUS_MARGIN` per differing character, or the
    text has fewer than `SURE_LETTERS` letters (a word or two), the note says which other reading was
    possible. Identical readings (German: ä ö ü ß are the same bytes in all four) go to the first of
    `LATIN_CODE_PAGES`.

    Why our own rule before charset-normalizer's: its language tables hold each language's 26 most
    frequent letters (Polish: ł ą ę ó; Hungarian without ő ű; Romanian without the cedilla ş ţ of
    legacy files), so its coherence score cannot tell "ě" from "ì". Restricted to these four code
    pages, its choice reads 109 of the 132 sentence, paragraph and page cells of
    `bench/codepages.py` right (French, Swedish and Danish read as Windows-1250; Czech and Slovak
    ISO-8859-2 as Windows-1250), its coherence 103; this rule reads all 132, and 453 of 454 single
    sentences (`--every-sentence`), the wrong one noted as ambiguous; on held-out text (UDHR
    Article 1, whole and by sentence) 83 of 83, where charset-normalizer's choice reads 65."""
    top = max(r.fit() for r in readings)
    tied: dict[str, _Reading] = {}
    for reading in readings:  # the first code page of each distinct text among the best-fitting
        if reading.fit() >= top:
            tied.setdefault(reading.text, reading)
    first = next(iter(tied.values()))
    if len(tied) == 1:
        return first.text, codecs.lookup(first.codec).name, _mixed_note(first.codec, top)
    import py3langid

    window = 5000  # what py3langid reads of each
    ranked = []
    for reading in tied.values():
        language, logprob = py3langid.classify(reading.text[:window])
        alphabet = _ALPHABET_SETS.get(language, frozenset())
        in_alphabet = sum(n for ch, n in reading.letters.items() if ch in alphabet)
        ranked.append(((reading.fit(language) >= 1.0, in_alphabet), float(logprob), language, reading))
    ranked.sort(key=lambda item: item[:2], reverse=True)  # stable: equal keys keep the code page order
    (evidence, logprob, language, chosen), (other_evidence, other_logprob, other_language, other) = ranked[:2]
    encoding = codecs.lookup(chosen.codec).name
    differ = [i for i, (a, b) in enumerate(zip(chosen.text, other.text, strict=True)) if a != b]
    seen = sum(1 for i in differ if i < window)  # differences py3langid saw
    letters = sum(1 for ch in chosen.text[:window] if ch.isalpha())
    sure = evidence > other_evidence or (seen > 0 and logprob - other_logprob >= AMBIGUOUS_MARGIN * seen)
    if sure and letters >= SURE_LETTERS:
        return chosen.text, encoding, _mixed_note(chosen.codec, top)
    where = differ[0]
    ours, theirs = CODE_PAGE_NAMES[chosen.codec], CODE_PAGE_NAMES[other.codec]
    note = (
        f"code page ambiguous: read as {ours} ({language}); as {theirs} ({other_language}) it would read "
        f"{other.text[where]!r} for {chosen.text[where]!r}"
    )
    mixed = _mixed_note(chosen.codec, top)
    return chosen.text, encoding, note if mixed is None else f"{note}; {mixed}"


def _utf16_ascii(low: bytes, high: bytes) -> bool:
    """``high`` (every other byte) nearly all NUL and ``low`` nearly all printable ASCII: English-like text
    in UTF-16 (little-endian when ``low`` holds the even bytes) with no byte-order mark."""
    printable = sum(1 for b in low if 32 <= b < 127 or b in (9, 10, 13))
    return high.count(0) >= len(high) * 0.9 and printable >= len(low) * 0.9


def _looks_like_text(text: str) -> bool:
    """At most 1 % control characters (C0 but tab and line breaks, and C1, which no text holds)."""
    sample = text[:20000]
    control = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\n\r\t\f") or 0x80 <= ord(ch) < 0xA0)
    return control <= len(sample) * 0.01


def read_file(path: Path, opts: ReadOptions) -> Iterator[Raw | Skipped]:
    fmt = ALL_FORMATS.get(path.suffix.lower())
    source = str(path)
    if fmt is None:
        yield Skipped(
            source,
            "unsupported",
            f"unsupported file type {path.suffix or '(none)'}; supported: {', '.join(sorted(ALL_FORMATS))}",
        )
        return
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        yield Skipped(source, "unreadable", f"cannot read the file: {exc.strerror or exc}")
        return
    if not stat.S_ISREG(mode):  # reading a named pipe would wait for a writer forever
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        yield Skipped(source, "not_a_regular_file", f"{kind}, not a regular file: not read")
        return
    if fmt in ("jsonl", "parquet"):  # containers stream row by row; the size limit applies to each row
        try:
            yield from (_jsonl(path, opts) if fmt == "jsonl" else _parquet(path, opts))
        except OSError as exc:
            yield Skipped(source, "unreadable", f"cannot read the file: {exc.strerror or exc}")
        except SkipDocument as skip:
            yield Skipped(source, skip.reason, skip.detail)
        return
    try:
        size = path.stat().st_size
        if size > opts.max_bytes:
            raise SkipDocument("oversized", f"{size / 1e6:.1f} MB is over the {opts.max_bytes / 1e6:.1f} MB limit")
        data = path.read_bytes()
    except OSError as exc:
        yield Skipped(source, "unreadable", f"cannot read the file: {exc.strerror or exc}")
        return
    except SkipDocument as skip:
        yield Skipped(source, skip.reason, skip.detail)
        return
    try:
        if fmt in ("txt", "md", "rst"):
            text, enc, note = decode(data)
            yield Raw(source, title_of(text, fmt), text, fmt, {"encoding": enc, **({"cleaned": note} if note else {})})
        elif fmt == "html":
            yield _html(source, data)
        else:
            yield _pdf(source, data)
    except SkipDocument as skip:
        yield Skipped(source, skip.reason, skip.detail)


# ---------------------------------------------------------------------------------------- titles

_MD_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_FIELD_TITLE = re.compile(r"^Title:\s*(.+)$", re.MULTILINE)  # PEP and RFC style headers


def title_of(text: str, fmt: str) -> str:
    if fmt == "md":
        m = _MD_TITLE.search(text[:5000])
        if m:
            return m.group(1).strip()
    if fmt in ("rst", "txt"):
        m = _FIELD_TITLE.search(text[:3000])
        if m:
            return m.group(1).strip()
        if fmt == "rst":
            lines = text[:5000].splitlines()
            for i in range(len(lines) - 1):
                line, under = lines[i].strip(), lines[i + 1].strip()
                if line and len(under) >= len(line) and len(set(under)) == 1 and under[0] in "=-~#*^":
                    return line
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()[:200]
    return ""


# ---------------------------------------------------------------------------------------- formats


def _html(source: str, data: bytes) -> Raw:
    from bs4 import BeautifulSoup

    text, enc, note = decode(data)
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    title = ""
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(strip=True)
    elif soup.h1:
        title = soup.h1.get_text(" ", strip=True)
    body = soup.body or soup
    plain = body.get_text("\n", strip=True)
    plain = re.sub(r"\n{3,}", "\n\n", plain)
    meta = {"encoding": enc, **({"cleaned": note} if note else {})}
    return Raw(source, title or title_of(plain, "txt"), plain, "html", meta)


def _pdf(source: str, data: bytes) -> Raw:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:  # pypdf raises several types here
                raise SkipDocument("encrypted", "the PDF is encrypted with a password") from None
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except SkipDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise SkipDocument("corrupt", f"not a readable PDF: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text.strip():
        raise SkipDocument("no_text", f"no extractable text in {len(pages)} pages (a scan without OCR?)")
    title = meta_title.strip() if len(meta_title.strip()) > 3 else title_of(text, "txt")
    return Raw(source, title, text, "pdf", {"pages": len(pages)})


def row_to_raw(source: str, row: dict[str, Any], opts: ReadOptions, fmt: str) -> Raw | Skipped:
    value = row.get(opts.text_field)
    if not isinstance(value, str):
        present = ", ".join(sorted(str(k) for k in row)[:12])
        return Skipped(source, "no_text_field", f"no string field {opts.text_field!r} (fields: {present})")
    if len(value) > opts.max_bytes:  # every row source (JSONL, Parquet, Hugging Face) has the same limit
        return Skipped(source, "oversized", f"the row's text is over the {opts.max_bytes / 1e6:.1f} MB limit")
    title = row.get(opts.title_field)
    meta: dict[str, Any] = {}
    if opts.id_field and row.get(opts.id_field) is not None:
        meta["external_id"] = str(row[opts.id_field])
    return Raw(source, str(title) if title else title_of(value, "txt"), value, fmt, meta)


def _jsonl(path: Path, opts: ReadOptions) -> Iterator[Raw | Skipped]:
    """One line at a time: a corpus of any size streams through in constant memory."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            yield from _jsonl_line(
                f"{path}:{lineno}", raw[3:] if lineno == 1 and raw[:3] == b"\xef\xbb\xbf" else raw, opts
            )


def _jsonl_line(where: str, raw: bytes, opts: ReadOptions) -> Iterator[Raw | Skipped]:
    if not raw.strip():
        return
    if len(raw) > opts.max_bytes:
        yield Skipped(where, "oversized", f"{len(raw) / 1e6:.1f} MB is over the {opts.max_bytes / 1e6:.1f} MB limit")
        return
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield Skipped(where, "undecodable", f"line is not UTF-8 (JSON Lines must be): {exc.reason}")
        return
    try:
        row = json.loads(line)
    except ValueError as exc:
        yield Skipped(where, "bad_json", f"line is not valid JSON: {exc.msg}")
        return
    if not isinstance(row, dict):
        yield Skipped(where, "bad_json", f"expected a JSON object, got {type(row).__name__}")
        return
    yield row_to_raw(where, row, opts, "jsonl")


def _parquet(path: Path, opts: ReadOptions) -> Iterator[Raw | Skipped]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise SkipDocument("corrupt", f"not a readable Parquet file: {exc}") from None
    names = set(pf.schema_arrow.names)
    if opts.text_field not in names:
        raise SkipDocument("no_text_field", f"no column {opts.text_field!r} (columns: {', '.join(sorted(names))})")
    columns = [c for c in (opts.text_field, opts.title_field, opts.id_field) if c and c in names]
    row_no = 0
    for batch in pf.iter_batches(batch_size=256, columns=columns):
        for row in batch.to_pylist():
            yield row_to_raw(f"{path}#{row_no}", row, opts, "parquet")
            row_no += 1
