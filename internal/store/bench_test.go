package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// BenchmarkCommit measures Commit throughput with transitions the size of a
// real one (a status with a check, a route, an event, a measurement point)
// spread over 2,000 rollouts: one transition per Commit from one goroutine,
// 100 per Commit, and one per Commit from 64 goroutines (the store groups
// them). It reports transitions/s; run with -benchtime=3s or more.
//
//	go test ./internal/store -run '^$' -bench Commit -benchtime 3s
func BenchmarkCommit(b *testing.B) {
	for _, d := range []struct {
		name string
		d    Durability
	}{{"power-safe", DurablePowerLoss}, {"crash-safe", DurableCrash}} {
		b.Run(d.name+"/serial", func(b *testing.B) { benchCommit(b, d.d, 1, 1) })
		b.Run(d.name+"/batch100", func(b *testing.B) { benchCommit(b, d.d, 100, 1) })
		b.Run(d.name+"/concurrent64", func(b *testing.B) { benchCommit(b, d.d, 1, 64) })
	}
}

const benchRollouts = 2000

func benchCommit(b *testing.B, d Durability, batch, goroutines int) {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	m := spec(b, "x", "v1")
	for i := 0; i < benchRollouts; i += 100 {
		var ts []Transition
		for j := i; j < i+100; j++ {
			name := fmt.Sprint("rollout-", j)
			mm := *m
			mm.Metadata.Name = name
			ts = append(ts, Transition{Name: name, At: t0, Manifest: &mm, Status: running(1, 0, t0)})
		}
		mustCommit(b, db, ts...)
	}
	gens := make([]atomic.Int64, benchRollouts)
	next := func(i int, n int) Transition {
		r := i % benchRollouts
		g := gens[r].Add(1)
		now := t0.Add(time.Duration(n) * time.Second)
		st := running(1, int(g%100), t0)
		st.RouteGeneration = g
		return Transition{Name: fmt.Sprint("rollout-", r), At: now, Status: st, Route: route(g, int(g%100)),
			Events:   []rollout.Event{{Time: now, Run: 1, Type: rollout.EventWeight, Severity: rollout.SeverityInfo, Phase: rollout.PhaseProgressing, Weight: int(g % 100), Reason: "weight raised"}},
			Points:   []Point{point(1, int(g), "error-rate", analysis.Pass)},
			Finished: nil}
	}
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	if goroutines == 1 {
		ts := make([]Transition, batch)
		for i := 0; i < b.N; i++ {
			for j := range ts {
				ts[j] = next(i*batch+j, i)
			}
			if err := db.Commit(ctx, ts...); err != nil {
				b.Fatal(err)
			}
		}
		n.Add(int64(b.N * batch))
	} else {
		var worker atomic.Int64
		b.SetParallelism((goroutines + 1) / 2) // GOMAXPROCS is 2 here
		b.RunParallel(func(pb *testing.PB) {
			w := int(worker.Add(1))
			for i := 0; pb.Next(); i++ {
				// each goroutine owns the rollouts w, w+64, ...: its generations
				// only grow
				if err := db.Commit(ctx, next(w+64*(i%(benchRollouts/64)), i)); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "transitions/s")
}

// BenchmarkLoad measures a restart's reload of 2,000 rollouts.
func BenchmarkLoad(b *testing.B) {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m := spec(b, "x", "v1")
	for i := 0; i < benchRollouts; i += 100 {
		var ts []Transition
		for j := i; j < i+100; j++ {
			mm := *m
			mm.Metadata.Name = fmt.Sprint("rollout-", j)
			ts = append(ts, Transition{Name: mm.Metadata.Name, At: t0, Manifest: &mm, Status: running(1, 10, t0), Route: route(3, 10)})
		}
		mustCommit(b, db, ts...)
	}
	b.ResetTimer()
	for b.Loop() {
		recs, err := db.Load(context.Background())
		if err != nil || len(recs) != benchRollouts {
			b.Fatalf("got %d records, %v", len(recs), err)
		}
	}
}
