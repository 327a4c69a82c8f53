#!/usr/bin/env python3
"""Reference values of the standard normal distribution (mpmath, 40 digits).

Run: python3 normal_ref.py > normal_ref.json
"""
import json

import mpmath

mpmath.mp.dps = 40
cdf = [{"z": z, "p": float(mpmath.ncdf(z))} for z in (-30, -8.5, -5, -2.575829, -1.96, -0.5, 0, 0.3, 1, 2.326, 4, 7.9)]
quantile = [{"p": p, "z": float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(p) - 1))}
            for p in (1e-12, 1e-6, 0.0005, 0.005, 0.025, 0.1, 0.5, 0.8, 0.95, 0.975, 0.995, 0.9995)]
print(json.dumps({"cdf": cdf, "quantile": quantile}, indent=1))
