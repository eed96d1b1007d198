"""What every exporter accepts: one scene, or several (a story, or n samples of one situation)."""
from __future__ import annotations

from collections.abc import Sequence

from ..scene import Scene

SceneOrScenes = Scene | Sequence[Scene]


def as_list(scenes: SceneOrScenes) -> list[Scene]:
    """The scenes in order; refuses an empty list, which no format can say anything about."""
    out = [scenes] if isinstance(scenes, Scene) else list(scenes)
    if not out:
        raise ValueError("nothing to export: the list of scenes is empty")
    return out
