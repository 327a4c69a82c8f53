package analysis

import (
	"testing"

	"aviary/internal/deptest"
)

// Analysis is pure: numbers in, verdicts out.
func TestPure(t *testing.T) {
	deptest.Check(t, ".", deptest.Pure)
}
