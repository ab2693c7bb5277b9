"""How many pairs of the equivalence table (tests/test_verifiable.py) each checker gets wrong.

Compares the hand-written checker this project used before Math-Verify (read from git history),
Math-Verify alone with its defaults (``verify(parse(reference), parse(answer))``), and
``autodata.judging.verifiable.equivalent``. Run from the repository root:

    python bench/verifiable_table.py
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "af62cd7"  # the last commit with the hand-written src/autodata/verifiable.py


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from math_verify import parse, verify

    from autodata.judging import verifiable
    from test_verifiable import TABLE

    old_src = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:src/autodata/verifiable.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old_verifiable.py"
        path.write_text(old_src)
        spec = importlib.util.spec_from_file_location("old_verifiable", path)
        assert spec and spec.loader
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)

    checkers = {
        "hand-written (before)": old.equivalent,
        "Math-Verify alone": lambda a, r: verify(parse(r), parse(a)),
        "autodata (Math-Verify + own rules)": verifiable.equivalent,
    }
    print(f"{len(TABLE)} pairs ({sum(e for *_, e in TABLE)} equivalent, {sum(not e for *_, e in TABLE)} not)")
    for name, check in checkers.items():
        wrong = [(a, r, e) for a, r, e in TABLE if bool(check(a, r)) is not e]
        fp = sum(1 for *_, e in wrong if not e)
        print(f"{name}: {len(wrong)} wrong ({fp} counted right when wrong, {len(wrong) - fp} counted wrong when right)")


if __name__ == "__main__":
    main()
