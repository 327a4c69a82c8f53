// Package providertest is the conformance suite every metrics provider
// passes: the behaviours the controller relies on, checked the same way
// against each provider's real source (a Prometheus server, an HTTP
// endpoint, the built-in proxy). It is test support only.
//
// A provider's test calls Run with a function that sets up the source and
// returns the provider and a Fixture describing what the source holds:
//
//	func TestConformance(t *testing.T) {
//		providertest.Run(t, func(t *testing.T) (providertest.Provider, providertest.Fixture) {
//			src := startSource(t)            // cleaned up with t.Cleanup
//			return newProvider(src), providertest.Fixture{
//				Canary: providertest.Expect{Query: src.query("canary", "v2"), Value: 0.25, Count: 1200},
//				...
//			}
//		})
//	}
//
// The function is called once per behaviour, each time with that
// behaviour's subtest; a source that is slow to start (a real Prometheus)
// may be started once by the caller and shared.
//
// Adding the built-in provider: serve known traffic through a proxy (say
// canary v2 at 5% with 10 errors in 1,000 requests), then pass queries for
// its error-rate metric for both roles as Canary and Stable (Value the error
// rate, Count the requests), a query for a version that served nothing as
// NoData, a query the provider does not know (e.g. Query "latency-p101") as
// Unknown, and, for Down and Hang, a provider whose proxy or metrics source
// is gone or never answers. A provider that cannot be down or hang (one
// that reads memory in-process) says so by leaving Down or Hang nil, and the
// suite then checks only that a cancelled context is still honoured.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// Provider is the controller's Provider interface (restated so that the
// suite does not import the controller): one metric of one version over a
// window; no data is a Measurement without a value, not an error; safe for
// concurrent use; honours ctx.
type Provider interface {
	Query(ctx context.Context, q rollout.Query) (analysis.Measurement, error)
}

// Fixture is what the source holds and how to reach it.
type Fixture struct {
	// Canary and Stable are queries for the two roles of one rollout and
	// the answers the source must give.
	Canary, Stable Expect
	// NoData is a query the source has no data for (e.g. a version that
	// served nothing): HasValue false, Count 0, no error.
	NoData rollout.Query
	// Unknown is a query the source refuses (a malformed or unknown
	// query): an error.
	Unknown rollout.Query
	// Down is a provider and query whose source is unreachable: an error.
	Down *Target
	// Hang is a provider and query whose source does not answer before
	// the context's deadline: an error wrapping context.DeadlineExceeded,
	// returned soon after the deadline.
	Hang *Target
	// Tolerance is the relative tolerance of values (default 1e-9).
	Tolerance float64
}

// Expect is a query and its answer. Count -1 means the provider does not
// know the sample size, and the suite checks that it says so.
type Expect struct {
	Query rollout.Query
	Value float64
	Count int64
}

// Target is a provider and a query to send it.
type Target struct {
	Provider Provider
	Query    rollout.Query
}

// hangBound is how long after its context's deadline a query may take to
// return: generous, to detect a provider that ignores the deadline, not to
// measure speed.
const hangBound = 20 * time.Second

// Run checks every behaviour of the contract against the provider that
// newProvider sets up.
func Run(t *testing.T, newProvider func(t *testing.T) (Provider, Fixture)) {
	t.Run("Values", func(t *testing.T) {
		p, f := newProvider(t)
		for _, e := range []struct {
			role string
			e    Expect
		}{{rollout.RoleCanary, f.Canary}, {rollout.RoleStable, f.Stable}} {
			if e.e.Query.Role != e.role {
				t.Fatalf("fixture: the %s query has role %q", e.role, e.e.Query.Role)
			}
			m, err := p.Query(t.Context(), e.e.Query)
			if err != nil {
				t.Fatalf("%s: %v", e.role, err)
			}
			if msg := check(m, e.e, f.Tolerance); msg != "" {
				t.Errorf("%s (version %s): %s", e.role, e.e.Query.Version, msg)
			}
		}
	})
	t.Run("NoData", func(t *testing.T) {
		p, f := newProvider(t)
		m, err := p.Query(t.Context(), f.NoData)
		if err != nil {
			t.Fatalf("no data must not be an error, got %v", err)
		}
		if m.HasValue || m.Count != 0 {
			t.Fatalf("got HasValue %v, Count %d, value %g; want no value and Count 0", m.HasValue, m.Count, m.Value)
		}
		checkWindow(t, m, f.NoData)
	})
	t.Run("Unknown", func(t *testing.T) {
		p, f := newProvider(t)
		m, err := p.Query(t.Context(), f.Unknown)
		if err == nil {
			t.Fatalf("got %+v and no error, want an error for query %q", m, f.Unknown.Metric.Query)
		}
	})
	t.Run("SourceDown", func(t *testing.T) {
		_, f := newProvider(t)
		if f.Down == nil {
			t.Log("the fixture has no source that can be down")
			return
		}
		m, err := f.Down.Provider.Query(t.Context(), f.Down.Query)
		if err == nil {
			t.Fatalf("got %+v and no error from an unreachable source, want an error", m)
		}
	})
	t.Run("Deadline", func(t *testing.T) {
		_, f := newProvider(t)
		if f.Hang == nil {
			t.Log("the fixture has no source that can hang")
			return
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := f.Hang.Provider.Query(ctx, f.Hang.Query)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want an error wrapping context.DeadlineExceeded", err)
			}
		case <-time.After(hangBound):
			t.Fatalf("the query did not return within %s of its context's deadline", hangBound)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		p, f := newProvider(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		m, err := p.Query(ctx, f.Canary.Query)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %+v, %v; want an error wrapping context.Canceled", m, err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		p, f := newProvider(t)
		const workers, rounds = 8, 5
		var wg sync.WaitGroup
		errs := make(chan string, workers*rounds*3)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					e := f.Canary
					if (w+r)%2 == 1 {
						e = f.Stable
					}
					m, err := p.Query(t.Context(), e.Query)
					if err != nil {
						errs <- fmt.Sprintf("%s: %v", e.Query.Role, err)
					} else if msg := check(m, e, f.Tolerance); msg != "" {
						errs <- fmt.Sprintf("%s: %s", e.Query.Role, msg)
					}
					m, err = p.Query(t.Context(), f.NoData)
					if err != nil || m.HasValue {
						errs <- fmt.Sprintf("no data: got %+v, %v", m, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}

// check compares a measurement with what was expected.
func check(m analysis.Measurement, e Expect, tol float64) string {
	if tol == 0 {
		tol = 1e-9
	}
	switch {
	case m.Err != "":
		return "the measurement carries an error: " + m.Err
	case !m.HasValue:
		return fmt.Sprintf("no value (note %q), want %g", m.Note, e.Value)
	case math.Abs(m.Value-e.Value) > tol*math.Max(1, math.Abs(e.Value)):
		return fmt.Sprintf("value %g, want %g", m.Value, e.Value)
	case m.Count != e.Count:
		return fmt.Sprintf("count %d, want %d", m.Count, e.Count)
	case !m.Start.Equal(e.Query.Start) || !m.End.Equal(e.Query.End):
		return fmt.Sprintf("window [%s, %s), want the query's [%s, %s)", m.Start, m.End, e.Query.Start, e.Query.End)
	}
	return ""
}

func checkWindow(t *testing.T, m analysis.Measurement, q rollout.Query) {
	t.Helper()
	if !m.Start.Equal(q.Start) || !m.End.Equal(q.End) {
		t.Errorf("window [%s, %s), want the query's [%s, %s)", m.Start, m.End, q.Start, q.End)
	}
}
