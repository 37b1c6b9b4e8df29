"""The cell layout of a disc table and the structured factorisation of the mixed model.

The model of :mod:`t2quant.group.stats.lmm` has random intercepts for participant, level and
disc (participant x level). A disc belongs to exactly one participant and one level, so the
sparse system lme4 factorises (``Lambda' Z' Z Lambda + I``, Bates et al. 2015, J Stat Softw
67(1), section 3) has a fixed pattern: eliminating the discs (a diagonal block), then the
participants (diagonal again), leaves a dense ``L x L`` system over the ``L`` levels (7 for
the lumbar spine). This module does that elimination by hand.

Everything lives in a *cell layout*: arrays of shape ``(P, L, ...)`` with one entry per
participant x level cell (``P`` participants; a missing disc is a cell with no rows). No
``n x n`` or ``q x q`` matrix is formed; cost and memory are linear in the rows ``n``.

Notation (relative units, residual variance 1): ``v = (v_disc, v_participant, v_level)``
relative variances (lme4's ``theta**2``); ``V = I + sum_k v_k Z_k Z_k'`` the relative
covariance of ``y``; ``M = Z_d' Z_d`` the diagonal matrix of rows per disc. Then

    V^-1 = I - Z_d Psi Z_d',    Psi = F + U~ K U~',

with ``F`` per participant "diagonal + rank 1" (``f = v_d / a``, ``a = 1 + v_d m``,
``gam = v_p / (1 + v_p sum_l m / a)``), ``U~ = (I - F M) T``, ``K = v_l (I + v_l J)^-1``,
``J = sum_p Omega0_p`` (L x L) and ``log|V| = sum log a + sum log s + log|I + v_l J|``.
Every term stays finite at ``v = 0`` (singular fits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = ["CellLayout", "Factorisation", "factorise", "make_layout", "term_sums"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class CellLayout:
    """Rows grouped into participant x level cells (discs), with their sufficient statistics.

    Shapes (``n`` rows, ``P`` participants, ``L`` levels, ``p`` fixed effects): ``pi``/``li``
    (n,) participant and level index of each row; ``m`` (P, L) rows per cell (0: missing
    disc); ``wd`` (P, L, p + 1) cell sums of ``[X, y]``; ``wtw`` (p + 1, p + 1) the
    cross-product ``[X, y]' [X, y]``; ``participants`` (P,) and ``levels`` (L,) the codes;
    ``x`` (n, p) and ``y`` (n,) the rows themselves (residuals without cancellation).
    """

    pi: NDArray[np.intp]
    li: NDArray[np.intp]
    m: Array
    wd: Array
    wtw: Array
    participants: NDArray
    levels: NDArray
    x: Array
    y: Array

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.pi.size)

    @property
    def n_discs(self) -> int:
        """Number of cells with at least one row."""
        return int(np.count_nonzero(self.m))

    @property
    def shape(self) -> tuple[int, int]:
        """``(P, L)``."""
        return self.m.shape  # type: ignore[return-value]

    def scatter(self, rows: Array) -> Array:
        """Cell sums ``Z_d' B`` of row values ``rows`` (n, k) -> (P, L, k)."""
        n_p, n_l = self.shape
        flat = self.pi * n_l + self.li
        rows = rows.reshape(len(flat), -1)
        out = np.empty((n_p * n_l, rows.shape[1]))
        for j in range(rows.shape[1]):
            out[:, j] = np.bincount(flat, weights=rows[:, j], minlength=n_p * n_l)
        return out.reshape(n_p, n_l, rows.shape[1])

    def gather(self, cells: Array) -> Array:
        """Row values ``Z_d C`` of cell values ``cells`` (P, L, k) -> (n, k)."""
        return cells[self.pi, self.li]


def make_layout(y: Array, x: Array, participant: ArrayLike, level: ArrayLike) -> CellLayout:
    """The :class:`CellLayout` of ``y`` (n,), ``x`` (n, p) and the grouping codes (n,)
    (any hashable values; sorted as R sorts factor levels)."""
    pi, participants = pd.factorize(np.asarray(participant), sort=True)
    li, levels = pd.factorize(np.asarray(level), sort=True)
    n_p, n_l = participants.size, levels.size
    w = np.column_stack([x, y])
    m = np.bincount(pi * n_l + li, minlength=n_p * n_l).astype(float).reshape(n_p, n_l)
    layout = CellLayout(pi, li, m, np.empty(0), w.T @ w, np.asarray(participants),
                        np.asarray(levels), x, y)  # fmt: skip
    object.__setattr__(layout, "wd", layout.scatter(w))
    return layout


def term_sums(cells: Array) -> tuple[Array, Array, Array]:
    """``C_k' b`` of cell values ``b`` (P, L, ...) for the disc (P, L, ...), participant
    (P, ...) and level (L, ...) terms, in :data:`t2quant.group.stats.lmm.TERMS` order."""
    return cells, cells.sum(axis=1), cells.sum(axis=0)


@dataclass(frozen=True)
class Factorisation:
    """``V(v)`` factorised in the cell layout (see the module docstring).

    ``v`` (3,) relative variances (disc, participant, level); ``m`` (P, L) rows per cell;
    ``a = 1 + v_d m``; ``u = m / a``; ``s`` (P,) ``1 + v_p sum_l u``; ``gam = v_p / s``;
    ``f = v_d / a``; ``omega = 1 / a``; ``j`` (L, L) ``Z_l' A Z_l`` with ``A`` the inverse
    of the participant-local part of ``V``; ``r = (I + v_l j)^-1``; ``k = v_l r``;
    ``logdet = log |V|``.
    """

    v: Array
    m: Array
    a: Array
    u: Array
    s: Array
    gam: Array
    f: Array
    omega: Array
    j: Array
    k: Array
    r: Array
    logdet: float

    @cached_property
    def omega0(self) -> Array:
        """(P, L, L) blocks of ``Z_d' A Z_d = diag(u) - gam u u'``."""
        eye = np.eye(self.u.shape[1])
        outer = self.u[:, :, None] * self.u[:, None, :]
        return self.u[:, :, None] * eye - self.gam[:, None, None] * outer

    def f_apply(self, b: Array) -> Array:
        """``F b`` for cell values ``b`` (P, L, k); ``F = diag(f) + blockdiag(gam w w')``,
        ``w = omega``."""
        proj = np.einsum("pl,plk->pk", self.omega, b)
        scale = self.gam[:, None, None] * self.omega[..., None]
        return self.f[..., None] * b + scale * proj[:, None, :]

    def psi(self, b: Array) -> Array:
        """``Psi b`` for cell values ``b`` (P, L, k), where ``V^-1 = I - Z_d Psi Z_d'``."""
        fb = self.f_apply(b)
        if self.v[2] == 0.0:
            return fb
        z = self.k @ (b - self.m[..., None] * fb).sum(axis=0)  # K U~' b, (L, k)
        zz = np.broadcast_to(z, b.shape)
        return fb + zz - self.f_apply(self.m[..., None] * zz)

    def omega_apply(self, b: Array) -> Array:
        """``Omega b = Z_d' V^-1 Z_d b`` for cell values ``b`` (P, L, k)."""
        o0b = np.einsum("pij,pjk->pik", self.omega0, b)
        if self.v[2] == 0.0:
            return o0b
        return o0b - np.einsum("pij,jk->pik", self.omega0, self.k @ o0b.sum(axis=0))

    def vinv_rows(self, layout: CellLayout, rows: Array) -> Array:
        """``V^-1 B`` for row values ``rows`` (n, k) -> (n, k)."""
        return rows - layout.gather(self.psi(layout.scatter(rows)))

    def trace_vinv_g(self, n: int | None = None) -> Array:
        """``tr(V^-1 G_k)`` (G_k = Z_k Z_k') for disc, participant and level, and
        ``tr(V^-1)`` appended when the number of rows ``n`` is given (relative units).
        From the diagonal + rank-1 blocks: ``Omega = Omega0 - N K N'``."""
        u, gam, k = self.u, self.gam, self.k
        uk = u @ k  # (P, L)
        uku = (uk * u).sum(axis=1)  # (P,)
        diag = u - gam[:, None] * u**2
        diag -= u**2 * (np.diag(k)[None, :] - 2 * gam[:, None] * uk + (gam**2 * uku)[:, None])
        ones0 = u / self.s[:, None]  # Omega0 1
        t_part = ones0.sum() - float(((ones0 @ k) * ones0).sum())
        out = [diag.sum(), t_part, np.trace(self.j @ self.r)]
        if n is not None:
            present = self.m > 0
            out.append(n - present.sum() + (diag[present] / self.m[present]).sum())
        return np.array(out)


def factorise(v: Array, m: Array) -> Factorisation:
    """The :class:`Factorisation` of ``V`` at relative variances ``v`` (3,) for the cell
    counts ``m`` (P, L)."""
    v_d, v_p, v_l = v
    a = 1.0 + v_d * m
    u = m / a
    s = 1.0 + v_p * u.sum(axis=1)
    gam = v_p / s
    j = np.diag(u.sum(axis=0)) - (u * gam[:, None]).T @ u
    inner = np.eye(m.shape[1]) + v_l * j
    r = np.linalg.inv(inner)
    sign, logdet_l = np.linalg.slogdet(inner)
    logdet = float(np.log(a).sum() + np.log(s).sum() + logdet_l) if sign > 0 else math.inf
    return Factorisation(v, m, a, u, s, gam, v_d / a, 1.0 / a, j, v_l * r, r, logdet)
