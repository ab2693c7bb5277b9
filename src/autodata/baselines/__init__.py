"""The paper's baselines (Self-Instruct, grounded Self-Instruct, CoT Self-Instruct) through the loop's evaluator."""
