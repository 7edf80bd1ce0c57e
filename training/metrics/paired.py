"""Paired tests for before/after measurements on the same photos (e.g. a tree before and after refinement).

Two tests, both exact where the sample allows and assumption-light, because a handful of photos is all
a CPU budget buys: a sign-flip permutation test of the mean of paired differences (continuous scores:
covering, a class's probability), and McNemar's exact test (binary outcomes: top-1 right or not).
Both are two-sided and give p = 1 when nothing changed.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import binomtest

# Up to this many non-zero differences every sign pattern is enumerated (2^16 = 65,536 means).
EXACT_UP_TO = 16


def sign_flip_test(differences: Sequence[float], n_random: int = 200_000, seed: int = 0) -> float:
    """Two-sided p-value of "the paired differences are symmetric about 0" for their mean.

    Under the null each difference is as likely to have either sign; the p-value is the share of sign
    patterns whose mean is at least as far from 0 as the observed one. Zero differences carry no sign
    and are dropped. Exact up to :data:`EXACT_UP_TO` non-zero differences, otherwise ``n_random`` random
    patterns (p = (hits + 1) / (n_random + 1), never 0).
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[d != 0]
    if len(d) == 0:
        return 1.0
    observed = abs(d.sum()) * (1 - 1e-12)  # tolerance: equal sums must count as "at least as far"
    if len(d) <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        return float((np.abs(signs @ d) >= observed).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_random, 10_000):
        signs = rng.choice((1.0, -1.0), size=(min(10_000, n_random - start), len(d)))
        hits += int((np.abs(signs @ d) >= observed).sum())
    return (hits + 1) / (n_random + 1)


@dataclass(frozen=True)
class McNemar:
    """Pairs right before and wrong after (``lost``), wrong before and right after (``gained``), and the
    two-sided exact binomial p-value of the discordant pairs splitting this unevenly."""

    lost: int
    gained: int
    p: float


def mcnemar_exact(before: Sequence[bool], after: Sequence[bool]) -> McNemar:
    b, a = np.asarray(before, bool), np.asarray(after, bool)
    if b.shape != a.shape:
        raise ValueError(f"paired outcomes differ in shape: {b.shape} vs {a.shape}")
    lost, gained = int((b & ~a).sum()), int((~b & a).sum())
    p = 1.0 if lost + gained == 0 else float(binomtest(gained, lost + gained, 0.5).pvalue)
    return McNemar(lost, gained, p)
