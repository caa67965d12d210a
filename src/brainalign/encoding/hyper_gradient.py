"""Hyper-gradient refinement of banded ridge: each target's band penalties by gradient steps on its
cross-validation loss, as himalaya's ``solve_multiple_kernel_ridge_hyper_gradient``, in the primal.

The random search (:func:`~brainalign.encoding.banded.banded_ridge_cv`) leaves each target at the
best of a few band weightings shared by all targets. From there each target's log band scalings
``δ`` (band ``k`` penalised by ``exp(−δ_k)``) move down the gradient of the validation loss summed
over folds::

    L(δ) = Σ_folds ½ ‖X_va β(δ) − y_va‖²,        (G_tr + D_δ) β(δ) = X_trᵀ y_tr,
    ∂L/∂δ_k = exp(−δ_k) Σ_{j ∈ band k} β_j q_j,   (G_tr + D_δ) q = X_vaᵀ (X_va β − y_va)

(implicit differentiation: one more solve per fold, for ``q``). As himalaya steps, each fold's
gradient is weighted by its share of the images and the step is ``1 / L``, ``L`` the largest over
folds of the Lipschitz constant of the gradient with β held fixed (computed exactly here: the
largest |eigenvalue| of an n_bands × n_bands matrix per target). Those steps are safe but short;
``step="adaptive"`` moves along the gradient, the largest δ by 1 at first, then twice as far after
a step that lowered the CV loss and a quarter as far after one that did not. It reaches lower CV
losses, but the per-target penalties then fit the folds' noise: in ``bench_banded.py --hyper`` its
held-out R² is lower than with himalaya's steps, which are the default.

No eigenbasis is shared once every target has its own penalties, so the systems of all targets are
solved together by conjugate gradients, in the eigen-coordinates of the band weighting the random
search chose for the target: there the Gram matrix is diagonal, an iteration costs one pair of
p × p GEMMs for all targets, and the diagonal of the penalties is a Jacobi preconditioner that is
exact at the start and close while the penalties stay near it. Solutions are warm-started from the
previous step's, and a solved target leaves the iteration. Each target keeps the evaluated iterate
with the lowest CV loss, the random-search start included, so the refinement never ends worse on
the training folds than where it began.
"""

from __future__ import annotations

import numpy as np

#: band weights below this fraction of the largest one are raised to it: a weight of 0 has no
#: gradient (infinite penalty), and the penalties α / γ must stay finite in float32
GAMMA_FLOOR = 1e-12
#: the adaptive steps' longest move of a δ (a factor e⁴ on a penalty)
MAX_STEP = 4.0


def floored(gammas: np.ndarray) -> np.ndarray:
    """Band weights (n_candidates, n_bands) with zeros raised to ``GAMMA_FLOOR`` × the row's max."""
    return np.maximum(gammas, GAMMA_FLOOR * gammas.max(1, keepdims=True))


def pcg(xp, operators, B, X, tol: float, max_iter: int):
    """Preconditioned conjugate gradients for the columns of ``B`` at once.

    Parameters
    ----------
    operators : callable
        ``operators(cols)`` → ``(apply_A, apply_M)`` for the columns ``cols`` (int ndarray; None:
        all): callables (p × len(cols)) → (p × len(cols)) applying the symmetric positive definite
        systems of those columns and their preconditioners.
    B : (p, t) array
        Right-hand sides.
    X : (p, t) array or None
        Starting solutions; None starts from the preconditioner applied to ``B``.
    tol : float
        A column is solved when ``√(rᵀ M r) ≤ tol √(bᵀ M b)`` (``r`` its residual, ``M`` the
        preconditioner): with ``M`` close to ``A⁻¹`` that is the error's ``A``-norm relative to the
        solution's, whatever the coordinates. Solved columns leave the iteration (one slow column
        does not hold up the others' GEMMs).

    Returns
    -------
    X : (p, t) array
    n_iter : int
        Iterations of the slowest column.
    """
    apply_A, apply_M = operators(None)
    MB = apply_M(B)
    b_norm = xp.sum(B * MB, 0)
    b_norm = xp.where(b_norm > 0, b_norm, 1.0)
    X = MB if X is None else X
    del MB
    R = B - apply_A(X)
    Z = apply_M(R)
    P = Z
    rz = xp.sum(R * Z, 0)
    out, cols = X, np.arange(B.shape[1])
    for it in range(max_iter + 1):
        done = np.abs(xp.to_numpy(rz / b_norm)) <= tol * tol
        if done.all() or it == max_iter:
            break
        if done.mean() >= 0.25:  # drop the solved columns
            keep = np.flatnonzero(~done)
            out[:, xp.asarray(cols[done], dtype=np.int64)] = X[
                :, xp.asarray(np.flatnonzero(done), dtype=np.int64)
            ]
            cols = cols[keep]
            k = xp.asarray(keep, dtype=np.int64)
            X, R, P, rz, b_norm = (xp.take(a, k, a.ndim - 1) for a in (X, R, P, rz, b_norm))
            apply_A, apply_M = operators(cols)
        AP = apply_A(P)
        pap = xp.sum(P * AP, 0)
        a = rz / xp.where(pap > 0, pap, 1.0)
        X = X + a * P
        R = R - a * AP
        del AP
        Z = apply_M(R)
        rz_new = xp.sum(R * Z, 0)
        P = Z + (rz_new / xp.where(rz > 0, rz, 1.0)) * P
        rz = rz_new
    if cols.size == out.shape[1]:
        return X, it
    out[:, xp.asarray(cols, dtype=np.int64)] = X
    return out, it


class TrainingSet:
    """The ridge systems ``(G + diag(d_t)) β_t = c_t`` of one training set (a fold, or all images).

    Parameters
    ----------
    geom : dict
        The training set's Gram matrix and means, as the random search's
        :func:`~brainalign.encoding.banded._geometry` gives them (``G_tr``, ``m_tr``, ``n_tr``,
        ``n_va``, ``centre``).
    X0 : (n, p) float32 ndarray
        Features, centred on their mean over all images when fitting an intercept.
    va : (n_va,) int ndarray
        Validation images (empty for the full training set).
    band_of : (p,) int ndarray
        Each feature's band.
    """

    def __init__(self, xp, geom, X0, va, band_of):
        self.xp = xp
        self.n_va, self.n_tr, self.centre = geom["n_va"], geom["n_tr"], geom["centre"]
        self.band_of = band_of
        m = geom["m_tr"]
        if self.n_va:
            self.va_b = xp.asarray(va, dtype=np.int64)
            self.Xva = xp.asarray(X0[va] - m.astype(np.float32))
        self.m_b = xp.asarray(m)
        self.G64 = geom["G_tr"] - self.n_tr * np.outer(m, m)
        self._eig: dict = {}

    def right_sides(self, XtY, Y0, col_sum):
        """``X_trᵀ y_tr`` (p × t) and the validation targets (n_va × t, or None), centred on the
        training means, of a target block ``Y0`` (n × t) with ``XtY = X0ᵀ Y0``."""
        xp = self.xp
        if not self.n_va:
            return XtY, None
        Yva = xp.take(Y0, self.va_b, 0)
        s_va = xp.sum(Yva, 0)
        # X0_trᵀ Y0_tr − n_tr m ȳ_trᵀ = X0ᵀY0 − (X_va + m)ᵀY_va − m (col_sum − s_va)ᵀ
        C = XtY - xp.matmul(self.Xva.T, Yva) - xp.matmul(self.m_b[:, None], col_sum[None, :])
        if self.centre:
            Yva = Yva - (col_sum - s_va)[None, :] / self.n_tr
        return C, Yva

    def eig(self, key, s: np.ndarray):
        """``(s, V, λ, W)`` with ``diag(s) G diag(s) = V diag(λ) Vᵀ`` (``s``, ``V``, ``λ`` on the
        backend) and ``W`` (n_bands × p) each eigenvector's squared mass in each band (cached by
        key)."""
        if key not in self._eig:
            lam, V = np.linalg.eigh(self.G64 * np.outer(s, s))
            W = np.zeros((self.band_of.max() + 1, V.shape[1]))
            np.add.at(W, self.band_of, V * V)
            xp = self.xp
            self._eig[key] = (
                xp.asarray(s)[:, None],
                xp.asarray(V),
                xp.asarray(np.clip(lam, 0, None))[:, None],
                W,
            )
        return self._eig[key]

    def solve(self, Bz, e, basis, Z, tol: float, max_iter: int):
        """Solutions ``z_t`` (p × t) of the ridge systems in the eigen-coordinates of ``basis``.

        With ``basis = (s, V, λ, W)`` from :meth:`eig` and ``β = diag(s) V z``, the system
        ``(G + diag(d_t)) β_t = c_t`` reads ``(diag(λ) + Vᵀ diag(e_t) V) z_t = Vᵀ (s ⊙ c_t)``,
        ``e_t = s² d_t`` per feature: one GEMM pair per iteration, and the Jacobi preconditioner
        ``1 / (λ + Wᵀ e_t)`` (exact when ``e_t`` is equal across bands: the random search's
        choice) costs nothing.

        Parameters
        ----------
        Bz : (p, t) backend array
            Right-hand sides ``Vᵀ (s ⊙ c)``.
        e : (n_bands, t) float64 ndarray
            Each band's penalty times the basis's band weight.
        Z : (p, t) backend array or None
            Warm starts.
        """
        xp = self.xp
        _, V, lam, W = basis

        def operators(cols):
            e_c = e if cols is None else e[:, cols]
            E = xp.asarray(e_c[self.band_of])
            denom = lam + xp.asarray(W.T @ e_c)
            return (lambda P: lam * P + xp.matmul(V.T, E * xp.matmul(V, P))), (lambda R: R / denom)

        return pcg(xp, operators, Bz, Z, tol, max_iter)


def _runs(cand):
    """``(candidate, slice)`` of each run of equal values in ``cand`` (sorted: one per candidate)."""
    edges = np.concatenate([[0], np.flatnonzero(np.diff(cand)) + 1, [cand.size]])
    return [
        (int(cand[a]), slice(int(a), int(b))) for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]


def _band_sums(xp, A, bands) -> np.ndarray:
    """Column sums of ``A`` (p × t) over each band's rows, (n_bands, t) float64."""
    return np.stack([xp.to_numpy(xp.sum(A[b], 0)).astype(np.float64) for b in bands])


class HyperGradient:
    """Refines the deltas of target blocks (see the module docstring).

    Parameters
    ----------
    X0 : (n, p) float32 ndarray
        Stacked bands, centred on their mean over all images when fitting an intercept.
    folds : list of (train, val) int arrays
    geometry : (dict, list of dict)
        :func:`~brainalign.encoding.banded._geometry` of ``X0`` and ``folds``: the Gram
        matrices the random search computed, not computed again.
    bands : list of slice
    gammas : (n_candidates, n_bands) float64
        The random search's band weightings (floored at :data:`GAMMA_FLOOR`): each target's
        systems are solved in the eigen-coordinates of its chosen one.
    max_iter : int
        Gradient steps per target.
    tol : float or None
        A target stops once its step moves no δ by ``tol`` or more (None: always ``max_iter``).
    step : {"lipschitz", "adaptive"}
        ``"lipschitz"``: himalaya's steps, ``1 / L`` times the gradient from the last iterate
        (safe but short: often below ``tol`` from the start). ``"adaptive"``: along the gradient
        from the best iterate so far, moving the largest δ by 1 at first, then twice as far after
        a step that lowered the CV loss and a quarter as far after one that did not.
    cg_tol, cg_max_iter : float, int
        Tolerance (the error's relative A-norm, :func:`pcg`) and iterations of the solves.
    """

    def __init__(
        self, xp, X0, folds, geometry, bands, gammas, max_iter=10, tol=1e-2,
        step="lipschitz", cg_tol=1e-4, cg_max_iter=100,
    ):  # fmt: skip
        self.xp, self.bands, self.gammas = xp, bands, floored(gammas)
        widths = np.array([b.stop - b.start for b in bands])
        self.band_of = np.repeat(np.arange(len(bands)), widths)
        full_geom, geoms = geometry
        self.sets = [
            TrainingSet(xp, g, X0, np.asarray(va), self.band_of)
            for g, (_, va) in zip(geoms, folds, strict=True)
        ]
        self.full = TrainingSet(xp, full_geom, X0, np.arange(0), self.band_of)
        self.n = X0.shape[0]
        self.max_iter, self.tol, self.step = max_iter, tol, step
        self.cg_tol, self.cg_max_iter = cg_tol, cg_max_iter
        self.scales = [np.sqrt(g)[self.band_of] for g in self.gammas]

    def _basis(self, S: TrainingSet, key, c):
        return S.eig((key, c), self.scales[c])

    def _to_basis(self, S, key, cand, C):
        """Right sides ``C`` (p × t, targets sorted by candidate) in each candidate's
        eigen-coordinates."""
        xp = self.xp
        runs = _runs(cand)
        out = None if len(runs) == 1 else xp.zeros(C.shape)
        for c, cols in runs:
            s, V, _, _ = self._basis(S, key, c)
            Bc = xp.matmul(V.T, s * C[:, cols])
            if out is None:
                return Bc
            out[:, cols] = Bc
        return out

    def _solve(self, S, key, cand, delta, B, Z):
        """``β = diag(s) V z`` (p × t) and the coordinates ``z`` of the systems at ``delta`` with
        right sides ``B`` in eigen-coordinates (targets sorted by candidate)."""
        xp = self.xp
        runs = _runs(cand)
        beta = z_all = None
        if len(runs) > 1:
            beta, z_all = xp.zeros(B.shape), xp.zeros(B.shape)
        for c, cols in runs:
            basis = self._basis(S, key, c)
            e = self.gammas[c][:, None] * np.exp(-delta[:, cols])
            z, _ = S.solve(
                B[:, cols], e, basis, None if Z is None else Z[:, cols], self.cg_tol,
                self.cg_max_iter,
            )  # fmt: skip
            s, V, _, _ = basis
            if beta is None:
                return s * xp.matmul(V, z), z
            beta[:, cols] = s * xp.matmul(V, z)
            z_all[:, cols] = z
        return beta, z_all

    def fit_block(self, XtY, Y0, col_sum, cand, alphas):
        """Gradient steps for one target block from the random search's choice, then the refit
        on all training images.

        Parameters
        ----------
        XtY : (p, t) backend array
            ``X0ᵀ Y0``.
        Y0 : (n, t) backend array
            The block's targets (centred on their means over all images when ``centre``).
        col_sum : (t,) backend array
            Column sums of ``Y0``.
        cand, alphas : (t,) int, (t,) float
            Each target's random-search candidate (its eigen-coordinates) and alpha.

        Returns
        -------
        deltas : (n_bands, t) float64
            The evaluated iterate of lowest CV loss per target.
        mse : (max_iter + 1, t) float64
            Mean over folds of the validation MSE at each evaluated iterate (NaN once stopped).
        coef : (p, t) backend array
            Coefficients on all training images at ``deltas``.
        """
        xp = self.xp
        t = cand.size
        # targets sorted by candidate: each candidate's eigen-coordinates hold a column range
        order = np.argsort(cand, kind="stable")
        perm = xp.asarray(order, dtype=np.int64)
        shuffled = (order != np.arange(t)).any()
        if shuffled:
            XtY, Y0, col_sum = (
                xp.take(XtY, perm, 1),
                xp.take(Y0, perm, 1),
                xp.take(col_sum, perm, 0),
            )
            cand, alphas = cand[order], alphas[order]
        delta = np.log(self.gammas[cand].T) - np.log(alphas)[None, :]
        best, best_mse = delta.copy(), np.full(t, np.inf)
        best_grad = np.zeros_like(delta)
        eta = np.ones(t)
        history = np.full((self.max_iter + 1, t), np.nan)
        act = np.arange(t)
        state = _BlockState()
        for k, S in enumerate(self.sets):
            C, Yva = S.right_sides(XtY, Y0, col_sum)
            state.rhs.append((self._to_basis(S, k, cand, C), Yva))
            del C
        for it in range(self.max_iter + 1):
            last = it == self.max_iter
            mse, grad, lip = self._evaluate(state, cand[act], delta[:, act], gradient=not last)
            history[it, act] = mse
            better = mse < best_mse[act]
            up = act[better]
            best[:, up], best_mse[up] = delta[:, up], mse[better]
            if last:
                break
            best_grad[:, up] = grad[:, better]
            if self.step == "adaptive":
                # bold driver on the gradient's direction: from the best iterate, a step of length
                # eta (largest |Δδ|, starting at 1: a factor e on a penalty), doubled after a step
                # that lowered the CV loss, quartered after one that did not
                if it:
                    eta[act] = np.minimum(eta[act] * np.where(better, 2.0, 0.25), MAX_STEP)
                g = best_grad[:, act]
                size = np.abs(g).max(0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    step = np.where(size > 0, eta[act] * g / size, 0.0)
                moving = (size > 0) & (eta[act] >= (self.tol or 0.0))
                base = best[:, act]
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    step = np.where(lip > 0, grad / lip, 0.0)
                moving = np.abs(step).max(0) >= (self.tol or 0.0)
                base = delta[:, act]
            delta[:, act] = base - np.where(moving, step, 0.0)
            if not moving.all():
                act = act[moving]
                if act.size == 0:
                    break
                state.keep(xp, np.flatnonzero(moving))
        del state
        Bz = self._to_basis(self.full, "full", cand, XtY)
        beta, _ = self._solve(self.full, "full", cand, best, Bz, None)
        if not shuffled:
            return best, history, beta
        inv = np.argsort(order)
        coef = xp.zeros(beta.shape)
        coef[:, perm] = beta
        return best[:, inv], history[:, inv], coef

    def _evaluate(self, state, cand, delta, gradient: bool):
        """Mean validation MSE (t,), and with ``gradient`` its gradient (n_bands × t) and, for
        himalaya's steps, the Lipschitz constant (t,), at ``delta`` (n_bands × t)."""
        xp, bands, K = self.xp, self.bands, len(self.sets)
        mse = np.zeros(delta.shape[1])
        grad = np.zeros(delta.shape)
        lip = np.zeros(delta.shape[1])
        for k, S in enumerate(self.sets):
            Cz, Yva = state.rhs[k]
            beta, state.z[k] = self._solve(S, k, cand, delta, Cz, state.z.get(k))
            parts = [xp.matmul(S.Xva[:, b], beta[b]) for b in bands]
            R = sum(parts) - Yva
            mse += xp.to_numpy(xp.sumsq(R, 0)).astype(np.float64) / (S.n_va * K)
            if not gradient:
                continue
            if self.step == "lipschitz":
                lip = np.maximum(lip, _lipschitz(xp, parts, R))
            del parts
            Qz = self._to_basis(S, k, cand, xp.matmul(S.Xva.T, R))
            q, state.u[k] = self._solve(S, k, cand, delta, Qz, state.u.get(k))
            grad += _band_sums(xp, beta * q, bands) * (S.n_va / self.n)
        return mse, grad * np.exp(-delta), lip


class _BlockState:
    """Per fold, a target block's right sides (in eigen-coordinates) and validation targets, and
    its last solutions (the next warm starts)."""

    def __init__(self):
        self.rhs: list = []
        self.z: dict = {}
        self.u: dict = {}

    def keep(self, xp, cols):
        """Drop every target but ``cols``."""
        cols = xp.asarray(cols, dtype=np.int64)

        def take(a):
            return None if a is None else xp.take(a, cols, 1)

        self.rhs = [(take(C), take(Y)) for C, Y in self.rhs]
        self.z = {k: take(v) for k, v in self.z.items()}
        self.u = {k: take(v) for k, v in self.u.items()}


def _lipschitz(xp, parts, R) -> np.ndarray:
    """Per target, the largest |eigenvalue| of ``PᵀP + diag(Pᵀr)`` (n_bands × n_bands), ``P`` the
    bands' validation predictions: the Lipschitz constant of the gradient with β held fixed."""
    nb = len(parts)
    H = np.empty((R.shape[1], nb, nb))
    for a in range(nb):
        for b in range(a, nb):
            H[:, a, b] = H[:, b, a] = xp.to_numpy(xp.sum(parts[a] * parts[b], 0))
        H[:, a, a] += xp.to_numpy(xp.sum(parts[a] * R, 0))
    return np.abs(np.linalg.eigvalsh(H)).max(-1)
