"""Where episodes run: this process (``local``, the default) or a pool of Ray workers (``ray``).

``autodata run`` builds its executor here from ``executor.kind``; the run driver in ``loop.run``
only sees the :class:`~autodata.loop.executor.Executor` interface, so outputs do not depend on it.
"""

from __future__ import annotations

from autodata.config import Config
from autodata.errors import UserError
from autodata.llm.runtime import ModelRuntime
from autodata.loop.executor import Executor, LocalExecutor


def make_executor(
    cfg: Config, *, runtime: ModelRuntime | None = None, use_cache: bool = True, roles: dict[str, str] | None = None
) -> Executor:
    """The executor ``executor.kind`` names. ``roles``: the run's roles (``EpisodeSettings.endpoints.roles()``),
    whose endpoints' budgets a Ray pool shares out (computed from the config when not given)."""
    if cfg.executor.kind == "local":
        return LocalExecutor(cfg, runtime=runtime, use_cache=use_cache)
    try:
        from autodata.executors.ray_pool import RayExecutor
    except ImportError:
        raise UserError(
            "executor.kind: 'ray' needs Ray, which is not installed; install the extra: pip install 'autodata[ray]'"
        ) from None
    return RayExecutor(cfg, use_cache=use_cache, roles=roles)
