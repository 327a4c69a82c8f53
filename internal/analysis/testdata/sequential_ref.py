#!/usr/bin/env python3
"""Reference values for the sequential count test (Sequential in Go).

Independent of the Go code, with mpmath at 50 digits:
  * the mixing grid and prior are rebuilt from their definition
    (R = exp(+-0.1 j), j = 1..70, weights proportional to
    exp(-(0.1 j)^2 / (2 * 2^2)), normalised to 1);
  * each interval's e-value is computed from the canary's share of the
    events: theta0 = r nc / (r nc + ns) under the null, theta = R r nc /
    (R r nc + ns) under the alternative, e = (theta/theta0)^Xc
    ((1-theta)/(1-theta0))^Xs exp(-d nc (theta/theta0 - 1)); for r = 0,
    e = R^Xc exp(-d nc (R - 1));
  * e-values, running maxima and anytime p-values follow directly, and the
    confidence-sequence ends are found with mpmath's bisection on the full
    recomputation for each trial d;
  * validity: the exact expectation of single-interval e-values under
    Bernoulli counts at the boundary of the null, by summing over every
    outcome of the two binomials. Every such value must be at most 1.

Run: python3 sequential_ref.py > sequential_ref.json
"""
import json

import mpmath

mpmath.mp.dps = 50
STEP, POINTS, SCALE = mpmath.mpf("0.1"), 70, mpmath.mpf(2)


def grid(sign):
    xs = [STEP * j for j in range(1, POINTS + 1)]
    w = [mpmath.exp(-x * x / (2 * SCALE * SCALE)) for x in xs]
    s = sum(w)
    return [(mpmath.exp(sign * x), wi / s) for x, wi in zip(xs, w)]


HARM, SAFE = grid(+1), grid(-1)


def interval_e(c, r, d, R):
    nc, xc, ns, xs = (mpmath.mpf(v) for v in c)
    if nc <= 0:
        return None
    if r == 0:
        return R ** xc * mpmath.exp(-d * nc * (R - 1))
    if ns <= 0:
        return None
    th0 = r * nc / (r * nc + ns)
    th = R * r * nc / (R * r * nc + ns)
    u = th / th0 - 1
    return (th / th0) ** xc * ((1 - th) / (1 - th0)) ** xs * mpmath.exp(-d * nc * u)


def path(counts, r, d, g):
    """E after each informative interval, for mixture grid g."""
    prods = [mpmath.mpf(1)] * len(g)
    out = []
    for c in counts:
        es = [interval_e(c, r, d, R) for R, _ in g]
        if es[0] is None:
            continue
        prods = [p * e for p, e in zip(prods, es)]
        out.append(sum(w * p for (_, w), p in zip(g, prods)))
    return out


def final_e(counts, r, d, g):
    p = path(counts, r, d, g)
    return p[-1] if p else mpmath.mpf(1)


def bisect(f, lo, hi):
    # f(lo) and f(hi) have different signs
    flo = f(lo)
    for _ in range(200):
        mid = (lo + hi) / 2
        if (f(mid) > 0) == (flo > 0):
            lo = mid
        else:
            hi = mid
        if hi - lo < mpmath.mpf("1e-15"):
            break
    return (lo + hi) / 2


def cs(counts, r_cs, alpha):
    level = mpmath.log(2 / mpmath.mpf(alpha))
    lo_lim = mpmath.mpf(0) if r_cs == 0 else mpmath.mpf(-1)
    hi_lim = mpmath.mpf(1)

    def harm(d):
        return mpmath.log(final_e(counts, r_cs, d, HARM)) - level

    def safe(d):
        return mpmath.log(final_e(counts, r_cs, d, SAFE)) - level
    if harm(lo_lim) < 0:
        lower = lo_lim
    elif harm(hi_lim) >= 0:
        lower = hi_lim
    else:
        lower = bisect(harm, lo_lim, hi_lim)
    if safe(hi_lim) < 0:
        upper = hi_lim
    elif safe(lo_lim) >= 0:
        upper = lo_lim
    else:
        upper = bisect(safe, lo_lim, hi_lim)
    return lower, upper


def case(name, counts, ratio, increase, alpha=0.01):
    r, d = mpmath.mpf(ratio), mpmath.mpf(increase)
    hp, sp = path(counts, r, d, HARM), path(counts, r, d, SAFE)
    e = hp[-1] if hp else mpmath.mpf(1)
    se = sp[-1] if sp else mpmath.mpf(1)
    maxe = max([mpmath.mpf(1)] + hp)
    maxse = max([mpmath.mpf(1)] + sp)
    r_cs = 0 if ratio == 0 else 1
    lower, upper = cs(counts, r_cs, alpha)
    return {
        "name": name, "counts": counts, "ratio": ratio, "increase": increase, "alpha": alpha,
        "logE": float(mpmath.log(e)), "logMaxE": float(mpmath.log(maxe)), "p": float(min(1, 1 / maxe)),
        "logSafeE": float(mpmath.log(se)), "logSafeMaxE": float(mpmath.log(maxse)), "safeP": float(min(1, 1 / maxse)),
        "effectLower": float(lower), "effectUpper": float(upper),
    }


def binom_pmf(n, k, p):
    return mpmath.binomial(n, k) * p ** k * (1 - p) ** (n - k)


def expectation(nc, ns, ps, r, d, R):
    """Exact E[e] for one interval with Bernoulli counts, pc = r ps + d."""
    pc = r * ps + d
    total = mpmath.mpf(0)
    for xc in range(nc + 1):
        pxc = binom_pmf(nc, xc, pc)
        for xs in range(ns + 1):
            total += pxc * binom_pmf(ns, xs, ps) * interval_e((nc, xc, ns, xs), r, d, R)
    return total


def main():
    rising = [  # weights 5% -> 50%, stable 0.5% errors, canary healthy
        [300, 1, 5700, 28], [310, 2, 5690, 30], [600, 3, 5400, 26], [620, 4, 5380, 25],
        [1500, 8, 4500, 22], [1480, 6, 4520, 24], [3000, 15, 3000, 16], [2950, 14, 3050, 15],
    ]
    bad = [[300, 9, 5700, 30], [320, 12, 5680, 27], [590, 20, 5410, 26]]
    cases = [
        case("healthy rising weight, ratio", rising, 1.25, 0),
        case("healthy rising weight, increase", rising, 1, 0.005),
        case("healthy rising weight, both", rising, 1.25, 0.0002, alpha=0.005),
        case("regression 3% vs 0.5%", bad, 1.25, 0.0002, alpha=0.005),
        case("regression, no tolerance", bad, 1, 0),
        case("no errors anywhere", [[1000, 0, 19000, 0], [1000, 0, 19000, 0]], 1, 0.001),
        case("quiet intervals skipped", [[0, 0, 5000, 3], [200, 1, 0, 0], [250, 6, 4000, 2]], 1.5, 0),
        case("one-sample max 1%", [[200, 1, 0, 0], [200, 3, 0, 0], [400, 9, 0, 0]], 0, 0.01),
        case("fractional slow counts", [[480, 7.25, 9100, 88.5], [500, 19.6, 9000, 91.2]], 1.25, 0.002),
        case("ratio below one", [[1000, 2, 1000, 9], [1000, 1, 1000, 11]], 0.5, 0),
        case("overwhelming harm", [[300, 150, 5700, 3]] * 3, 1.25, 0.0002),
    ]
    valid = []
    for nc, ns, ps, r, d in [(20, 30, 0.05, 1, 0), (15, 40, 0.1, 1.5, 0), (25, 25, 0.02, 1, 0.03),
                             (10, 60, 0.2, 2, 0.05), (30, 10, 0.3, 1, 0), (12, 0, 0.0, 0, 0.1)]:
        for R in [mpmath.exp(mpmath.mpf(x) / 10) for x in (-30, -10, -1, 1, 5, 20, 60)]:
            if ns == 0 and r != 0:
                continue
            valid.append({"nc": nc, "ns": ns, "ps": ps, "ratio": r, "increase": d, "r": float(R),
                          "expectation": float(expectation(nc, ns, mpmath.mpf(ps), mpmath.mpf(r), mpmath.mpf(d), R))})
    print(json.dumps({"cases": cases, "validity": valid}, indent=1))


if __name__ == "__main__":
    main()
