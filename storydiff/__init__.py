"""storydiff: sample the affect beats of a scene, projected onto what its characters allow.

Public names are imported on first use (PEP 562), so `import storydiff` stays
light: no torch, no lxml until a loader or the engine is touched.
"""
from __future__ import annotations

import importlib
import warnings

# torch labels sparse CSR "beta" and warns on first use; the constraint set relies on it deliberately.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

__version__ = "0.1.0"

# public name -> module (relative to this package) that defines it; add a line per export
_LAZY: dict[str, str] = {
    "load_characters": "loader",
    "load_situation": "loader",
    "load_story": "loader",
    "ValidationError": "errors",
    "compile_constraints": "constraints",
    "Polytope": "polytope",
    "StateLayout": "layout",
    "Engine": "engine",
    "Scene": "scene",
    "Step": "sampling",
    "Pin": "models",
    "Event": "models",
    "Appraisal": "models",
    "StorydiffError": "errors",
    "project": "projection",
    "ProjectionInfo": "projection",
    "Agent": "agent",
    "Beat": "agent",
    "Pool": "pool",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'storydiff' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
