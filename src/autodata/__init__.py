"""autodata: grounded, discriminative LLM training and evaluation data from source documents."""

__version__ = "0.1.0"
