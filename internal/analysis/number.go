package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Number is a plain number in a spec that may also be written as a percentage
// ("0.5%" is 0.005) or as a duration ("250ms" is 0.25, in seconds, the unit of
// latencies throughout aviary).
type Number float64

// UnmarshalJSON reads a JSON number, or a string holding a number, a
// percentage or a duration.
func (n *Number) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		*n = Number(f)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a number, a percentage (\"0.5%%\") or a duration (\"250ms\"), got %s", b)
	}
	v, err := ParseNumber(s)
	if err != nil {
		return err
	}
	*n = Number(v)
	return nil
}

// ParseNumber reads a number, a percentage ("0.5%" is 0.005) or a duration in
// seconds ("250ms" is 0.25).
func ParseNumber(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a percentage", s)
		}
		return f / 100, nil
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a finite number", s)
		}
		return f, nil
	}
	if d, err := time.ParseDuration(t); err == nil {
		return d.Seconds(), nil
	}
	return 0, fmt.Errorf("%q is not a number, a percentage (\"0.5%%\") or a duration (\"250ms\")", s)
}

// Float returns n as a float64; a nil n is NaN.
func (n *Number) Float() float64 {
	if n == nil {
		return math.NaN()
	}
	return float64(*n)
}
