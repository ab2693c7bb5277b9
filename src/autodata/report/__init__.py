"""``autodata report``: one self-contained HTML file of a run's figures and numbers."""
