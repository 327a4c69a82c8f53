#!/usr/bin/env python3
"""Reference values for the Mann-Whitney U test and the Hodges-Lehmann shift.

Independent of the Go code: U is counted pair by pair, the tie term from a
Counter of the pooled values, the p-values from mpmath's normal distribution
at 40 digits, the Hodges-Lehmann estimate and Moses' interval from the sorted
list of all pairwise differences, and the exact permutation p-value by
enumerating every way to split the pooled sample (small cases only).

Run: python3 ranktest_ref.py > ranktest_ref.json
"""
import itertools
import json
import math
import random
from collections import Counter

import mpmath

mpmath.mp.dps = 40


def u_stat(x, y):
    u = mpmath.mpf(0)
    for a in x:
        for b in y:
            if a > b:
                u += 1
            elif a == b:
                u += mpmath.mpf(1) / 2
    return u


def normal_approx(x, y):
    n, m = len(x), len(y)
    N = n + m
    u = u_stat(x, y)
    mean = mpmath.mpf(n * m) / 2
    tie = sum(t ** 3 - t for t in Counter(list(x) + list(y)).values())
    var = mpmath.mpf(n * m) / 12 * ((N + 1) - mpmath.mpf(tie) / (N * (N - 1)))
    if var <= 0:
        return u, mpmath.mpf(0), mpmath.mpf(1), mpmath.mpf(1), mpmath.mpf(1)
    sd = mpmath.sqrt(var)
    z = (u - mean) / sd
    p_greater = 1 - mpmath.ncdf((u - mean - mpmath.mpf(1) / 2) / sd)
    p_less = mpmath.ncdf((u - mean + mpmath.mpf(1) / 2) / sd)
    p_two = min(mpmath.mpf(1), 2 * min(p_greater, p_less))
    return u, z, p_greater, p_less, p_two


def hodges_lehmann(x, y, confidence):
    d = sorted(a - b for a in x for b in y)  # IEEE doubles, as in Go
    w = len(d)
    if w % 2 == 1:
        shift = d[(w + 1) // 2 - 1]
    else:
        shift = (d[w // 2 - 1] + d[w // 2]) / 2
    n, m = len(x), len(y)
    z = mpmath.sqrt(2) * mpmath.erfinv(mpmath.mpf(confidence))
    c = int(mpmath.floor(mpmath.mpf(n * m) / 2 - z * mpmath.sqrt(mpmath.mpf(n * m) * (n + m + 1) / 12)))
    if c < 1:
        return shift, None, None
    return shift, d[c - 1], d[w - c]


def exact_p_greater(x, y):
    """P(U >= observed) over all splits of the pooled sample."""
    pooled = list(x) + list(y)
    n = len(x)
    obs = u_stat(x, y)
    hits = total = 0
    for idx in itertools.combinations(range(len(pooled)), n):
        s = set(idx)
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in s]
        total += 1
        if u_stat(xs, ys) >= obs:
            hits += 1
    return hits / total


def case(name, x, y, confidence=0.95, exact=False):
    u, z, pg, pl, p2 = normal_approx(x, y)
    shift, lo, hi = hodges_lehmann(x, y, confidence)
    out = {
        "name": name, "canary": x, "stable": y, "confidence": confidence,
        "u": float(u), "z": float(z), "pGreater": float(pg), "pLess": float(pl), "pTwoSided": float(p2),
        "shift": shift, "shiftLower": lo, "shiftUpper": hi,
    }
    if exact:
        out["exactPGreater"] = exact_p_greater(x, y)
    return out


def main():
    rng = random.Random(20240605)
    cases = [
        case("small no ties", [1.1, 2.3, 3.7, 4.2, 5.9, 6.4, 8.8], [0.5, 1.9, 2.2, 3.1, 3.3, 4.0, 5.0, 5.5], exact=True),
        case("small with ties", [1, 2, 2, 3, 5, 5, 5, 8], [1, 1, 2, 3, 3, 4, 5], exact=True),
        case("identical", [3.0] * 6, [3.0] * 7),
        case("canary clearly larger", [10.0 + i for i in range(9)], [1.0 + i for i in range(8)], exact=True),
        case("canary smaller", [0.1, 0.2, 0.25, 0.3, 0.31, 0.4, 0.5], [0.35, 0.6, 0.7, 0.71, 0.9, 1.2, 1.3], confidence=0.9, exact=True),
        case("too small for the interval", [1.0, 2.0], [1.5, 2.5], confidence=0.99),
    ]
    # Medium samples: latencies with a shift, rounded to milliseconds (ties).
    x = [round(rng.lognormvariate(-1.6, 0.4) + 0.01, 3) for _ in range(60)]
    y = [round(rng.lognormvariate(-1.6, 0.4), 3) for _ in range(75)]
    cases.append(case("lognormal shifted 10ms", x, y, confidence=0.99))
    x = [rng.gauss(0, 1) for _ in range(40)]
    y = [rng.gauss(0, 1) for _ in range(33)]
    cases.append(case("normal no shift", x, y, confidence=0.95))

    # Histograms: buckets (upper, count); values in one bucket are tied at
    # the bucket's representative value (geometric midpoint, half the upper
    # bound for the first bucket).
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
    hc = [0, 3, 10, 22, 15, 6, 2, 1]
    hs = [1, 5, 14, 25, 12, 3, 1, 0]

    def expand(counts):
        out, lower = [], 0.0
        for u, c in zip(bounds, counts):
            v = u / 2 if lower <= 0 else math.sqrt(lower * u)
            out += [v] * c
            lower = u
        return out
    hcase = case("histograms", expand(hc), expand(hs), confidence=0.95)
    hcase["histogram"] = {"bounds": bounds, "canary": hc, "stable": hs}
    cases.append(hcase)
    print(json.dumps({"cases": cases}, indent=1))


if __name__ == "__main__":
    main()
