package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Numbers in reasons: short, and the same on every machine.

func fmtValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return fmt.Sprintf("%.4g", v)
}

func fmtSigned(v float64) string {
	if v > 0 {
		return "+" + fmtValue(v)
	}
	return fmtValue(v)
}

func fmtRange(min, max *Number) string {
	switch {
	case min != nil && max != nil:
		return fmt.Sprintf("[%s, %s]", fmtValue(float64(*min)), fmtValue(float64(*max)))
	case min != nil:
		return fmt.Sprintf(">= %s", fmtValue(float64(*min)))
	case max != nil:
		return fmt.Sprintf("<= %s", fmtValue(float64(*max)))
	}
	return "any range"
}

// fmtCount writes an integer with thousands separators: 1,243.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtPercent writes a rate as a percentage with two significant digits:
// 0.048 is "4.8%", 0.003 is "0.3%".
func fmtPercent(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	p := v * 100
	switch {
	case p == 0:
		return "0%"
	case math.Abs(p) >= 10:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	case math.Abs(p) < 0.0001:
		return strconv.FormatFloat(p, 'e', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'g', 2, 64) + "%"
}

// fmtP writes a p-value or significance level with two significant digits.
func fmtP(p float64) string {
	if p < 1e-6 {
		return strconv.FormatFloat(p, 'e', 1, 64)
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// fmtSeconds writes a duration given in seconds: 0.25 is "250ms".
func fmtSeconds(s float64) string {
	switch {
	case math.IsInf(s, 1):
		return "inf"
	case s >= 1:
		return strconv.FormatFloat(s, 'g', 3, 64) + "s"
	case s >= 1e-3:
		return strconv.FormatFloat(s*1e3, 'g', 3, 64) + "ms"
	}
	return strconv.FormatFloat(s*1e6, 'g', 3, 64) + "µs"
}
