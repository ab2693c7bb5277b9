"""The simulated model ladder: a model provider (``provider: simulated``) that reads no prompt prose.

- :mod:`autodata.sim.provider`: the registry entry the runtime loads by name (the runtime itself
  never imports this package) and the in-process backend;
- :mod:`autodata.sim.ladder`: the stateless engine (``respond``) shared with ``serve-sim``;
- :mod:`autodata.sim.contracts`: how a request is read (schema titles, fenced data blocks);
- :mod:`autodata.sim.handlers`: the explicit table of roles and their contract inputs;
- :mod:`autodata.sim.roles`, ``exact``, ``agent``, ``baselines``, ``meta``: the role behaviours;
- :mod:`autodata.sim.server`: ``serve-sim``, the ladder behind an OpenAI-compatible HTTP API.
"""
