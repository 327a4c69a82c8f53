package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/dataplane"
	"aviary/internal/provider/providertest"
	"aviary/internal/rollout"
)

// source holds fixed measurements by version, as a data plane's proxies
// would after serving known traffic.
type source map[string]analysis.Measurement

func (s source) Query(_ context.Context, q rollout.Query) (analysis.Measurement, error) {
	if q.Metric.Query != "error-rate" {
		return analysis.Measurement{}, fmt.Errorf("unknown query %q", q.Metric.Query)
	}
	m, ok := s[q.Version]
	if !ok {
		return analysis.Measurement{Start: q.Start, End: q.End}, nil
	}
	m.Start, m.End = q.Start, q.End
	return m, nil
}

// The remote provider passes the conformance suite through a real data
// plane's measurement handler over HTTP.
func TestConformance(t *testing.T) {
	at := time.Unix(5000, 0).UTC()
	q := func(query, version, role string) rollout.Query {
		return rollout.Query{Rollout: "web", Metric: rollout.Metric{Name: "m", Query: query},
			Version: version, Role: role, Start: at, End: at.Add(time.Minute)}
	}
	providertest.Run(t, func(t *testing.T) (providertest.Provider, providertest.Fixture) {
		src := source{
			"v2": {Value: 0.25, HasValue: true, Count: 8, Requests: 8, Errors: 2},
			"v1": {Value: 0.01, HasValue: true, Count: 100, Requests: 100, Errors: 1},
		}
		srv := httptest.NewServer(dataplane.MeasureHandler(src))
		t.Cleanup(srv.Close)
		stop := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		t.Cleanup(func() { close(stop); hang.Close() })
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + l.Addr().String()
		l.Close()
		return New(srv.URL, nil), providertest.Fixture{
			Canary:  providertest.Expect{Query: q("error-rate", "v2", rollout.RoleCanary), Value: 0.25, Count: 8},
			Stable:  providertest.Expect{Query: q("error-rate", "v1", rollout.RoleStable), Value: 0.01, Count: 100},
			NoData:  q("error-rate", "v3", rollout.RoleCanary),
			Unknown: q("latency-p101", "v2", rollout.RoleCanary),
			Down:    &providertest.Target{Provider: New(down, nil), Query: q("error-rate", "v2", rollout.RoleCanary)},
			Hang:    &providertest.Target{Provider: New(hang.URL, &http.Client{}), Query: q("error-rate", "v2", rollout.RoleCanary)},
		}
	})
}

func TestRefusalNamesTheCause(t *testing.T) {
	srv := httptest.NewServer(dataplane.MeasureHandler(source{}))
	defer srv.Close()
	_, err := New(srv.URL, nil).Query(context.Background(), rollout.Query{Metric: rollout.Metric{Query: "p95"}})
	if err == nil || err.Error() != `data plane: unknown query "p95"` {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("a refusal is not a timeout")
	}
}
