"""How `documents.readers.decode` reads Latin text saved in a legacy code page: a confusion table.

    python bench/codepages.py [--detail] [--every-sentence] [--reader decode|charset-normalizer]

The cases are those of `tests/codepage_cases.py` (the tests read the same): prose in 17 languages
(`tests/data/codepages/`), cut at three lengths (the first sentence, the first paragraph, the page of
three paragraphs), and, held out from the rule's development, UDHR Article 1 in 11 of the languages
(whole and each sentence); encoded in each code page its script is written in (Central European:
Windows-1250 and ISO-8859-2; Western: Windows-1252, ISO-8859-1 and ISO-8859-15), and decoded. A
cell is right when the decoded text equals the text that was encoded.

Prints, per language and length, how many of its code pages read right; ``--detail`` adds what each
wrong cell was read as and every note; ``--every-sentence`` takes each sentence of the page instead
of the first only, ``--every-word`` each word with an accented letter alone (a word or two is
below what a document needs, but shows where the rule stops being sure: it must then say so in a
note); ``--reader charset-normalizer`` scores charset-normalizer's own choice among the
four code pages instead. Run it against another source tree with ``PYTHONPATH=THAT/src``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from codepage_cases import CENTRAL, LENGTHS, WESTERN, encoded_cases  # noqa: E402

LENGTHS_ALL = ("every sentence", "paragraph", "page", "UDHR")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detail", action="store_true", help="show what each wrong cell was read as")
    parser.add_argument("--every-sentence", action="store_true", help="every sentence, not only the first")
    parser.add_argument("--every-word", action="store_true", help="every word with an accented letter, alone")
    parser.add_argument(
        "--reader",
        choices=("decode", "charset-normalizer"),
        default="decode",
        help="charset-normalizer: its best() among the four Latin code pages, for comparison",
    )
    args = parser.parse_args()
    lengths = LENGTHS_ALL if args.every_sentence else LENGTHS
    if args.every_word:
        lengths = ("every word",)
    from autodata.documents.model import SkipDocument
    from autodata.documents.readers import decode

    if args.reader == "charset-normalizer":
        from charset_normalizer import from_bytes

        def decode(data: bytes) -> tuple[str, str, str | None]:
            best = from_bytes(data, cp_isolation=["cp1252", "iso8859_15", "cp1250", "iso8859_2"]).best()
            return (str(best), best.encoding, None) if best is not None else ("", "none", None)

    table: dict[tuple[str, str], list[int]] = {}
    wrong: list[str] = []
    notes: list[str] = []
    silent = 0  # read wrong without a note
    for lang, length, codec, expected, data in encoded_cases(lengths):
        try:
            text, encoding, note = decode(data)
        except SkipDocument as skip:
            text, encoding, note = "", "skipped: " + skip.detail, None
        cell = table.setdefault((lang, length), [0, 0])
        cell[1] += 1
        if text == expected:
            cell[0] += 1
        else:
            pairs = enumerate(zip(text, expected, strict=False))
            diff = next((i for i, (a, b) in pairs if a != b), min(len(text), len(expected)))
            wrong.append(f"{lang} {length} {codec}: read as {encoding}: {text[max(0, diff - 20) : diff + 30]!r}")
            silent += not note
        if note:
            notes.append(f"{lang} {length} {codec}: read as {encoding}, note: {note}")
    print("| language | " + " | ".join(lengths) + " |")
    print("| --- |" + " --- |" * len(lengths))
    totals = {length: [0, 0] for length in lengths}
    for lang in CENTRAL + WESTERN:
        cells = []
        for length in lengths:
            right, of = table.get((lang, length), [0, 0])
            totals[length][0] += right
            totals[length][1] += of
            cells.append(f"{right}/{of}")
        print(f"| {lang} | " + " | ".join(cells) + " |")
    print("| **all** | " + " | ".join(f"{r}/{n}" for r, n in totals.values()) + " |")
    right = sum(r for r, _ in totals.values())
    cases = sum(n for _, n in totals.values())
    print(
        f"\n{right} of {cases} read right; {cases - right - silent} wrong with a note, {silent} wrong without one; "
        f"{len(notes)} notes in all.",
        file=sys.stderr,
    )
    if args.detail:
        for line in wrong + notes:
            print(line)


if __name__ == "__main__":
    main()
