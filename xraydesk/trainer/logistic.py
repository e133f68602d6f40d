"""Multinomial logistic regression with an L2 penalty, in numpy: quick mode's head.

Quick mode fits a linear softmax layer on frozen features; that is a small smooth convex
problem (a few thousand images, 2,048 features, a handful of classes) that L-BFGS solves
in well under a second per regularisation strength. It is written here rather than taken
from scikit-learn so that the light build, which ships neither scikit-learn nor SciPy
(150 MB), fine-tunes too, and both builds fit the same head.

The objective is scikit-learn's: ``C * sum_i w_i * CE(x_i, y_i) + ||W||^2 / 2``, the
intercepts not penalised, ``w_i`` the class weights ("balanced": n / (classes * count)).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class SoftmaxFit:
    weight: np.ndarray  # (K, D)
    bias: np.ndarray  # (K,)
    iterations: int
    converged: bool


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-sample weights that make every class weigh the same in total."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    per_class = np.zeros(n_classes)
    per_class[present] = len(y) / (present.sum() * counts[present])
    return per_class[y]


def fit_softmax(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    C: float,
    sample_weight: np.ndarray | None = None,
    start: SoftmaxFit | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
) -> SoftmaxFit:
    """Minimise the objective by L-BFGS from ``start`` (a warm start) or from zero; stops
    when the largest gradient entry is below ``tol`` (scikit-learn's lbfgs criterion)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, d = x.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: n_classes * d].reshape(n_classes, d)
        b = theta[n_classes * d :]
        z = x @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        loss = C * float(sw @ (log_norm - (z * onehot).sum(axis=1))) + 0.5 * float((w * w).sum())
        g = C * (np.exp(z - log_norm[:, None]) - onehot) * sw[:, None]
        grad = np.concatenate([(g.T @ x + w).ravel(), g.sum(axis=0)])
        return loss, grad

    theta = (
        np.concatenate([start.weight.ravel(), start.bias]).astype(np.float64)
        if start is not None
        else np.zeros(n_classes * (d + 1))
    )
    theta, iterations, converged = _lbfgs(objective, theta, max_iter, tol)
    return SoftmaxFit(
        theta[: n_classes * d].reshape(n_classes, d), theta[n_classes * d :], iterations, converged
    )


def _lbfgs(objective, theta: np.ndarray, max_iter: int, tol: float, memory: int = 10):
    """Limited-memory BFGS with a backtracking (Armijo) line search."""
    loss, grad = objective(theta)
    history: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    for iteration in range(max_iter):
        if np.abs(grad).max() <= tol:
            return theta, iteration, True
        direction = -grad
        alphas = []
        for s, yv, rho in reversed(history):  # two-loop recursion
            alpha = rho * float(s @ direction)
            alphas.append(alpha)
            direction -= alpha * yv
        if history:
            s, yv, _ = history[-1]
            direction *= float(s @ yv) / float(yv @ yv)
        else:
            direction /= max(1.0, float(np.abs(grad).max()))
        for (s, yv, rho), alpha in zip(history, reversed(alphas), strict=True):
            beta = rho * float(yv @ direction)
            direction += (alpha - beta) * s
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction (numerical trouble): restart from -grad
            history.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0
        while True:
            candidate = theta + step * direction
            new_loss, new_grad = objective(candidate)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s, yv = candidate - theta, new_grad - grad
        sy = float(s @ yv)
        if sy > 1e-12:
            history.append((s, yv, 1.0 / sy))
        theta, loss, grad = candidate, new_loss, new_grad
        if step < 1e-10:
            return theta, iteration + 1, False
    return theta, max_iter, bool(np.abs(grad).max() <= tol)
