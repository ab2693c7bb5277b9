"""Dedup and contamination beyond English: tokens in every script (google/adk-python#6136 is the kind of
fault: an ASCII-only tokenizer sees nothing in non-Latin text, so any two such texts look identical)."""

from __future__ import annotations

import json

import pytest

from autodata.analysis.contamination import check
from autodata.analysis.dedup import dedup_run
from autodata.analysis.similarity import jaccard, near_duplicate_pairs, shingles, tokens
from autodata.example import Example

# Two unrelated questions per script, each a plausible benchmark-style item
UNRELATED = {
    "chinese": ("光合作用中叶绿素吸收哪种颜色的光最多？", "第一次世界大战是在哪一年结束的？"),
    "japanese": ("東京タワーの高さは何メートルですか？", "日本で一番長い川の名前は何ですか？"),
    "russian": (
        "Какой газ растения поглощают во время фотосинтеза?",
        "В каком году закончилась Первая мировая война?",
    ),
    "greek": (
        "Ποιο αέριο απορροφούν τα φυτά κατά τη φωτοσύνθεση;",
        "Σε ποιο έτος τελείωσε ο Πρώτος Παγκόσμιος Πόλεμος;",
    ),
    "arabic": ("ما الغاز الذي تمتصه النباتات أثناء عملية البناء الضوئي؟", "في أي عام انتهت الحرب العالمية الأولى؟"),
    "thai": ("พืชดูดซับก๊าซชนิดใดในระหว่างการสังเคราะห์ด้วยแสง", "สงครามโลกครั้งที่หนึ่งสิ้นสุดลงในปีใด"),
    "hindi": ("प्रकाश संश्लेषण के दौरान पौधे कौन सी गैस अवशोषित करते हैं?", "प्रथम विश्व युद्ध किस वर्ष समाप्त हुआ?"),
}


@pytest.mark.parametrize("script", sorted(UNRELATED))
def test_unrelated_questions_are_not_identical(script):
    a, b = UNRELATED[script]
    assert tokens(a) and tokens(b), "every script yields tokens"
    assert jaccard(shingles(a), shingles(b)) < 0.2
    assert jaccard(shingles(a), shingles(a)) == 1.0
    assert near_duplicate_pairs([a, b], threshold=0.7) == []


@pytest.mark.parametrize("script", sorted(UNRELATED))
def test_a_copy_with_changed_punctuation_and_width_is_a_near_duplicate(script):
    a, b = UNRELATED[script]
    copy = a.rstrip("?？;؟") + "!"  # same words, other punctuation
    pairs = near_duplicate_pairs([a, b, copy], threshold=0.7)
    assert [(p.a, p.b) for p in pairs] == [(0, 2)]


def test_normalisation_nfkc_and_casefold():
    assert tokens("ＡＢＣ　１２３") == ["abc", "123"]  # full-width forms
    assert tokens("STRASSE") == tokens("straße")
    assert tokens("ΣΟΦΙΑ") == tokens("σοφια")
    assert tokens("光合作用") == ["光合", "合作", "作用"] and tokens("光") == ["光"]
    assert tokens("x的值") == ["x", "的值"]
    assert tokens("हिन्दी") == ["हिन्दी"]  # combining vowel signs stay inside the word
    assert tokens("?!…") == [] and jaccard(shingles("?!"), shingles("…")) == 0.0


def test_dedup_keeps_unrelated_questions_in_four_scripts(tmp_path):
    rows = []
    for script in ("chinese", "russian", "greek", "arabic", "japanese"):
        for i, q in enumerate(UNRELATED[script]):
            rows.append({"id": f"{script}-{i}", "question": q, "context": "", "gap": 0.3})
    rows.append({"id": "chinese-0-copy", "question": UNRELATED["chinese"][0], "context": "", "gap": 0.1})
    (tmp_path / "examples.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = dedup_run(tmp_path, on="question")
    assert result["dropped"] == 1
    assert result["clusters"] == [
        {
            "kept": "chinese-0",
            "dropped": [
                {
                    "id": "chinese-0-copy",
                    "similarity_to_kept": 1.0,
                    "reason": result["clusters"][0]["dropped"][0]["reason"],
                }
            ],
        }
    ]


def _example(row: dict) -> Example:
    return Example(document_id="doc", context="", reference_answer="", **row)


def test_contamination_flags_a_word_for_word_chinese_copy_and_nothing_unrelated():
    benchmark = [UNRELATED["chinese"][0], UNRELATED["russian"][0], UNRELATED["greek"][0]]
    examples = [
        {"id": "copy", "question": UNRELATED["chinese"][0]},
        {"id": "copy-in-a-sentence", "question": "请回答：" + UNRELATED["chinese"][0]},
        {"id": "zh-other", "question": UNRELATED["chinese"][1]},
        {"id": "ru-other", "question": UNRELATED["russian"][1]},
        {"id": "el-other", "question": UNRELATED["greek"][1]},
        {"id": "ar-other", "question": UNRELATED["arabic"][1]},
        {"id": "ja-other", "question": UNRELATED["japanese"][1]},
    ]
    result = check([_example(e) for e in examples], benchmark, n=8, threshold=0.5)
    flagged = {r["id"]: r["overlap"] for r in result["flagged_examples"]}
    assert set(flagged) == {"copy", "copy-in-a-sentence"}
    assert flagged["copy"] == 1.0 and result["max_overlap"] == 1.0
    russian_copy = check([_example({"id": "ru", "question": UNRELATED["russian"][0].upper()})], benchmark, n=4)
    assert russian_copy["flagged"] == 1  # case-folded: an upper-cased copy is still a copy
