"""The constraint set: a polytope `lower ≤ A·y ≤ upper` with a name per row and per column."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Polytope:
    """`A` is a float64 sparse CSR `[rows, columns]`; `lower`/`upper` may hold ±inf."""

    A: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    names: list[str]
    columns: list[str]
    sources: list[str | None] = field(default_factory=list)  # "path:line:column" per row, where a file says so

    def __post_init__(self) -> None:
        m, n = self.A.shape
        if len(self.names) != m or len(self.columns) != n or self.lower.shape != (m,) or self.upper.shape != (m,):
            raise ValueError(f"inconsistent polytope: A {tuple(self.A.shape)}, {len(self.names)} names, "
                             f"{len(self.columns)} columns, bounds {tuple(self.lower.shape)}/{tuple(self.upper.shape)}")
        if not self.sources:
            self.sources = [None] * m

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.A.shape)

    def dense(self) -> torch.Tensor:
        return self.A.to_dense() if self.A.layout != torch.strided else self.A

    def violation(self, y: torch.Tensor) -> torch.Tensor:
        """Per-sample max violation of any row, scaled by the row's norm, checked in float64."""
        A = self.A.to(device=y.device, dtype=torch.float64)
        ay = (A @ y.to(torch.float64).T).T
        lo, hi = self.lower.to(y.device), self.upper.to(y.device)
        v = torch.clamp(lo - ay, min=0) + torch.clamp(ay - hi, min=0)
        return (v / self.row_norms().to(y.device)).amax(dim=1) if v.shape[1] else torch.zeros(y.shape[0], device=y.device)

    def row_norms(self) -> torch.Tensor:
        A = self.A.to_sparse_coo().coalesce()
        sq = torch.zeros(self.A.shape[0], dtype=torch.float64)
        sq.index_add_(0, A.indices()[0], A.values().to(torch.float64) ** 2)
        return sq.sqrt().clamp_min(1e-12)

    @staticmethod
    def block_diag(polytopes: list[Polytope], prefixes: list[str] | None = None) -> Polytope:
        """Stack independent scenes so one call projects them all; names get `sceneK/` prefixes."""
        if not polytopes:
            raise ValueError("block_diag needs at least one polytope")
        prefixes = prefixes or [f"scene{k}/" for k in range(len(polytopes))]
        coo = [p.A.to_sparse_coo().coalesce() for p in polytopes]
        rows, cols, vals = [], [], []
        r0 = c0 = 0
        for p, a in zip(polytopes, coo):
            idx = a.indices()
            rows.append(idx[0] + r0)
            cols.append(idx[1] + c0)
            vals.append(a.values())
            r0 += p.A.shape[0]
            c0 += p.A.shape[1]
        A = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals),
                                    (r0, c0), dtype=torch.float64).coalesce().to_sparse_csr()
        return Polytope(
            A=A,
            lower=torch.cat([p.lower for p in polytopes]),
            upper=torch.cat([p.upper for p in polytopes]),
            names=[pre + n for pre, p in zip(prefixes, polytopes) for n in p.names],
            columns=[pre + n for pre, p in zip(prefixes, polytopes) for n in p.columns],
            sources=[s for p in polytopes for s in p.sources],
        )
