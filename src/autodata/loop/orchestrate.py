"""Which orchestrator runs an episode: the paper's scripted workflow or the agent.

Both drive the same :class:`autodata.loop.episode.Steps`; this module only chooses. It sits above
``loop.episode`` and ``loop.agent`` (the agent builds on the episode's steps), so neither of those
imports the other back.
"""

from __future__ import annotations

from autodata.documents import Document
from autodata.llm.runtime import ModelRuntime
from autodata.loop.agent import run_agent_episode
from autodata.loop.episode import Episode, EpisodeSettings, run_scripted_episode


async def run_episode(runtime: ModelRuntime, doc: Document, s: EpisodeSettings) -> Episode:
    """The episode under the orchestrator the settings name (``loop.orchestrator``: scripted or agent)."""
    if s.orchestrator == "agent":
        return await run_agent_episode(runtime, doc, s)
    return await run_scripted_episode(runtime, doc, s)
