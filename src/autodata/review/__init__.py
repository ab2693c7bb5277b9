"""The review web app: read a run's examples with their evidence, approve, reject or edit them."""
