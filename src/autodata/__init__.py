"""autodata: grounded, discriminative LLM training and evaluation data from source documents.

The public Python surface, curated (everything else is internal and may move):

- ``load_config``: a validated config from a YAML file, a mapping, or a ``Config``;
- ``generate``: run the inner loop on documents (texts, dicts or a ``datasets.Dataset``) and get
  the accepted examples as a ``datasets.Dataset`` in the export's layout; ``preview``: a few
  documents round by round, without a run directory; ``load_examples``: a run's examples;
- ``verifiable_reward``, ``rubric_reward``, ``RubricReward``, ``code_reward``, ``compute_score``: training
  rewards equal to the filter's scores (TRL's reward-function signature, verl's ``compute_score``;
  ``code_reward`` runs a completion's code against the row's hidden tests in the profile's sandbox);
- ``frozen_hash``: the fingerprint of what the outer loop can never touch (``autodata frozen``).

Names are imported on first use, so ``import autodata`` and the CLI stay light.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_config": "autodata.api",
    "generate": "autodata.api",
    "preview": "autodata.api",
    "load_examples": "autodata.api",
    "verifiable_reward": "autodata.rewards",
    "rubric_reward": "autodata.rewards",
    "RubricReward": "autodata.rewards",
    "code_reward": "autodata.rewards",
    "compute_score": "autodata.rewards",
    "frozen_hash": "autodata.frozen",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autodata' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
