"""Data-set level analysis: comparison tables, near-duplicates, diversity, judge reliability, contamination."""
