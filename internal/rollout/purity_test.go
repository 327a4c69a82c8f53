package rollout

import (
	"testing"

	"aviary/internal/deptest"
)

// The core is pure: no networking, files, logging, clock or Kubernetes.
func TestPure(t *testing.T) {
	r := deptest.Pure
	r.Allow = []string{"aviary/internal/analysis"}
	deptest.Check(t, ".", r)
}
