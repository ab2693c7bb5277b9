"""Turning model text into values: what is repaired (and recorded), what is refused."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from autodata.llm.structured import (
    OutputError,
    json_schema_validator,
    parse_json,
    pydantic_validator,
    split_think,
)


class Item(BaseModel):
    name: str
    weight: int


def test_plain_json_needs_no_repair():
    assert parse_json('{"a": 1}', "stop") == ({"a": 1}, [])


def test_fenced_json_is_extracted_and_noted():
    value, repairs = parse_json('Here you go:\n```json\n{"a": 1}\n```\nAnything else?', "stop")
    assert value == {"a": 1}
    assert repairs == ["extracted JSON from surrounding text"]


def test_trailing_comma_is_repaired_and_noted():
    value, repairs = parse_json('{"a": 1, "b": [1, 2,],\n}', "stop")
    assert value == {"a": 1, "b": [1, 2]}
    assert "repaired JSON syntax" in repairs


def test_truncated_output_is_never_repaired():
    with pytest.raises(OutputError, match="cut off by the token limit"):
        parse_json('{"a": 1, "b": "half an ans', "length")


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that."])
def test_no_json_is_refused(text):
    with pytest.raises(OutputError):
        parse_json(text, "stop")


def test_think_block_is_split_off():
    body, reasoning = split_think('<think>let me see</think>\n{"a": 2}')
    assert body == '{"a": 2}' and reasoning == "let me see"
    assert parse_json('<think>x</think>{"a": 2}', "stop") == ({"a": 2}, [])


def test_string_number_is_coerced_and_recorded():
    validate = pydantic_validator(Item)
    value, notes = validate({"name": "x", "weight": "+8"})
    assert value.weight == 8
    assert notes == ["coerced value types (e.g. a number given as a string)"]
    value, notes = validate({"name": "x", "weight": 8})
    assert notes == []


def test_missing_field_is_refused_with_the_field_named():
    with pytest.raises(OutputError, match="weight: Field required"):
        pydantic_validator(Item)({"name": "x"})


def test_missing_field_never_becomes_a_default():
    class WithDefault(BaseModel):
        name: str
        weight: int

    with pytest.raises(OutputError):
        pydantic_validator(WithDefault)({"name": "x", "weight": None})


def test_json_schema_validator_names_the_path():
    schema = {"type": "object", "properties": {"d": {"type": "integer", "maximum": 5}}, "required": ["d"]}
    check = json_schema_validator(schema)
    assert check({"d": 3}) == ({"d": 3}, [])
    with pytest.raises(OutputError, match="d: 9 is greater than the maximum of 5"):
        check({"d": 9})
    with pytest.raises(OutputError, match="'d' is a required property"):
        check({})
    with pytest.raises(OutputError, match="expected a JSON object"):
        json_schema_validator(None)([1, 2])
