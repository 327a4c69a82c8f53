package analysis

import "math"

// normalCDF is the standard normal distribution function Φ(z), accurate in
// both tails.
func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// normalUpper is 1-Φ(z), accurate for large z.
func normalUpper(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normalQuantile is Φ⁻¹(p) for p in (0,1).
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }
