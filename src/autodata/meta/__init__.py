"""The outer loop: recipes, the optimizer that evolves them, and the guards that keep it honest."""
