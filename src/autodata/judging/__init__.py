"""Everything that turns an answer into a score or a decision: the sealed judging side.

- ``rubric``: the scoring formula and the rubric's structural rules (trusted core).
- ``acceptance``: the acceptance presets and predicate (trusted core).
- ``verifiable``: answer equivalence for exact-answer profiles (checked in code, no judge).
- ``solver``, ``judge``, ``loop_judge``: the frozen roles that answer and mark, with their templates
  (``templates/*.j2``) and output schemas (``schemas``).
- ``framing``: how untrusted text is fenced before a model reads it.
- ``scoring``: the scorer a profile names, and the loop judge's verdict as the predicate reads it.

- ``code``: the code profile's test-run summaries (its scorer runs answers in ``autodata.sandbox``).

The package imports nothing of the project outside itself but the model runtime's call interface
(``autodata.llm.runtime``, ``autodata.llm.types``, ``autodata.llm.structured``), the code sandbox
(``autodata.sandbox``, which runs and counts unit tests) and ``autodata.errors``; a test checks that
on the import graph. The outer loop's frozen hash (``autodata.frozen.frozen_hash``) covers every
file found in this directory and, following imports transitively, the code it calls: the model runtime
whole (which reads each reply: no answer, reasoning split off) and the sandbox whole, so no edit to how
answers are scored can go unnoticed by the optimizer (``autodata frozen CONFIG --files``).
"""
