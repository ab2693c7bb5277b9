"""Edges a new user meets on day one, found by trying the CLI from a fresh clone (issues 12 and 15)."""

from __future__ import annotations

import io

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import server_zoo as zoo
from autodata.cli import app
from autodata.cli_common import _progress
from autodata.errors import ConfigError
from test_server_zoo import ServerThread

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("width", [60, 80, 200])
def test_progress_line_keeps_total_percentage_and_eta_on_a_narrow_terminal(width):
    """Issue 15: the bar shows done/total, percentage and ETA. The running counts are long; on an
    80-column terminal they used to push all of it out (only ``… accepted 1 …`` was left)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None)
    progress = _progress(console)
    info = "accepted 1 (100%) exhausted 0 failed 0 | rounds 1 | calls 31 tok 81,237 $0.0206"
    task = progress.add_task("run", total=4, info=info)
    progress.update(task, advance=1)
    console.print(progress.make_tasks_table(progress.tasks))
    line = buf.getvalue()
    assert "run" in line and "1/4" in line and "25%" in line and "eta" in line, line
    assert ("accepted 1" in line) if width >= 80 else ("acc" in line), line


def test_preflight_does_not_blame_max_tokens_for_its_own_short_ping(tmp_path):
    """``validate --check`` against serve-sim: a tiny call cut at pre-flight's own 64 tokens still came
    back with text (the server answers); telling the user to "check max_tokens" was noise on every endpoint."""
    with ServerThread(zoo.MODES["serve-sim"]) as srv:
        ep = {"provider": "openai", "model": "sim-weak", "base_url": srv.url}
        cfg = {
            "models": {"m": ep},
            "roles": {r: "m" for r in ("challenger", "quality_verifier", "judge", "weak_solver", "strong_solver")},
        }
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        res = CliRunner().invoke(app, ["validate", str(path), "--check"])
    assert res.exit_code == 0, res.output
    assert "pre-flight: m ok" in res.output
    assert "check max_tokens" not in res.output, res.output


@pytest.mark.parametrize(
    "url",
    [
        "https://x.openai.azure.com/openai/deployments/d?api-version=2024-10-21&api-key=0123456789abcdef0123",
        "https://generativelanguage.googleapis.com/v1beta/openai?key=AIzaSyA0123456789abcdefghijklmnopqrstu",
        "http://127.0.0.1:8000/v1?x=sk-proj-abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_a_key_in_the_base_url_query_is_refused_like_one_in_extra_body(tmp_path, url):
    """Issue 12: key-shaped values are refused in extra_body/default_headers/default_query; a key in
    base_url's query string was stored verbatim in run.db too. An api-version parameter stays fine."""
    cfg = {
        "models": {"m": {"provider": "openai", "model": "gpt", "base_url": url}},
        "roles": {r: "m" for r in ("challenger", "quality_verifier", "judge", "weak_solver", "strong_solver")},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert isinstance(res.exception, ConfigError) and res.exception.exit_code == 2  # the CLI prints it, no traceback
    details = "\n".join(res.exception.details)
    assert "models.m.base_url.0" in details and "never write a key" in details, details
    assert url.split("=")[-1] not in details  # the key itself is not echoed
    cfg["models"]["m"]["base_url"] = url.split("?")[0] + "?api-version=2024-10-21"
    path.write_text(yaml.safe_dump(cfg))
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_a_unicode_text_file_with_a_byte_order_mark_is_read_not_skipped_as_binary(codec):
    """A document saved as "Unicode" (UTF-16 with a BOM, Windows editors) was skipped as binary (NUL bytes)."""
    import codecs as _codecs

    from autodata.documents.readers import SkipDocument, decode

    text = "Harbour tides and mooring schedules, café. " * 20
    bom = {"utf-16-be": _codecs.BOM_UTF16_BE}.get(codec, b"")
    text_read, encoding, _ = decode(bom + text.encode(codec))
    assert text_read == text and encoding.startswith("utf-")
    with pytest.raises(SkipDocument):
        decode(b"\x00\x01binary" * 10)  # NUL bytes without a BOM: still binary


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (bytes(range(1, 32)) * 200, "control characters"),  # valid UTF-8, every byte a control character
        ("Tide tables for the harbour, read aloud. ".encode("utf-16-le") * 4, "UTF-16 text without a byte-order mark"),
        ("Tide tables for the harbour, read aloud. ".encode("utf-16-be") * 4, "UTF-16 text without a byte-order mark"),
        (bytes([0, 1, 2, 3, 250, 0, 0, 9]) * 100, "binary file"),  # NUL bytes that are not UTF-16 letters
    ],
)
def test_bytes_that_are_not_a_document_are_skipped_with_the_reason(data, says):
    """A UTF-8 file of control bytes was accepted as a document; UTF-16 without a BOM was called binary."""
    from autodata.documents.readers import SkipDocument, decode

    with pytest.raises(SkipDocument) as info:
        decode(data)
    assert info.value.reason == "binary" and says in info.value.detail


def test_text_with_a_few_control_characters_is_still_read():
    from autodata.documents.readers import decode

    line = (
        "Mooring schedule\f page two\x1b[0m, tabs\tand lines; the harbour master posts them at dawn each day, "
        "and again at dusk for the night crews.\n"
    )
    text = line * 40  # a form feed and one ANSI escape a line: under 1 % control characters
    assert decode(text.encode())[0] == text
