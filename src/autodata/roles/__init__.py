"""The models' parts in the loop: challenger, quality verifier, solvers, judge."""
