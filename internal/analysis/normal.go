package analysis

import "math"

// normalCDF is the standard normal distribution function Φ(z), accurate in
// both tails.
func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// normalUpper is 1-Φ(z), accurate for large z.
func normalUpper(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normalQuantile is Φ⁻¹(p) for p in (0,1). math.Erfcinv loses digits far in
// the tail, so two Newton steps on Φ (accurate there through Erfc) follow.
func normalQuantile(p float64) float64 {
	if p > 0.5 {
		return -normalQuantile(1 - p)
	}
	z := -math.Sqrt2 * math.Erfcinv(2*p)
	for range 2 {
		pdf := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
		if pdf == 0 || math.IsInf(z, 0) {
			break
		}
		z -= (normalCDF(z) - p) / pdf
	}
	return z
}
