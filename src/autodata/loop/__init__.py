"""The inner loop: episodes per document (and, later, the run that drives them)."""
