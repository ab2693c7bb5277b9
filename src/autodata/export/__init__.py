"""``autodata export``: a run's examples as JSONL, Parquet, a Hugging Face dataset, or RL/SFT rows."""
