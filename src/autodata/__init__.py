"""autodata: grounded, discriminative LLM training and evaluation data from source documents."""

__version__ = "0.1.0"

# The Python API (autodata.api), imported on first use so `import autodata` and the CLI stay light.
_API = ("load_config", "generate", "preview", "load_examples")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name in _API:
        from autodata import api

        return getattr(api, name)
    raise AttributeError(f"module 'autodata' has no attribute {name!r}")
