"""The simulated model ladder; importing the package registers the role behaviours."""

from autodata.llm.sim import agent as _agent  # noqa: F401  (registers handlers)
from autodata.llm.sim import baselines as _baselines  # noqa: F401  (registers handlers)
from autodata.llm.sim import exact as _exact  # noqa: F401  (registers handlers)
from autodata.llm.sim import meta as _meta  # noqa: F401  (registers handlers)
from autodata.llm.sim import roles as _roles  # noqa: F401  (registers handlers)
