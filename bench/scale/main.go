// Command scale runs thousands of rollouts in one controller over the real
// SQLite store, with synthetic checks and no proxies, every rollout checked
// once a second, and reports memory and how late decisions are.
//
// Lateness is measured from outside the scheduler: each rollout asks for
// its checks once per interval, over the window since its last checks, so a
// window longer than the interval is exactly how late that decision came.
//
//	go run ./bench/scale -rollouts 2000 -duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"aviary/internal/analysis"
	"aviary/internal/controller"
	"aviary/internal/rollout"
	"aviary/internal/store"
)

func main() {
	n := flag.Int("rollouts", 2000, "rollouts in the server")
	d := flag.Duration("duration", 60*time.Second, "how long to measure, after all rollouts started")
	workers := flag.Int("workers", 0, "controller workers (0: the controller's default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured period to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		profile = f
	}
	if err := run(*n, *d, *workers); err != nil {
		log.Fatal(err)
	}
}

// profile receives a CPU profile of the measured period, when asked for.
var profile *os.File

// provider answers every query at once with healthy counts, and records
// how late each rollout's checks were.
type provider struct {
	interval time.Duration
	mu       sync.Mutex
	late     []time.Duration
	record   bool
}

func (p *provider) Query(_ context.Context, q rollout.Query) (analysis.Measurement, error) {
	if q.Role == rollout.RoleCanary {
		p.mu.Lock()
		if p.record {
			p.late = append(p.late, q.End.Sub(q.Start)-p.interval)
		}
		p.mu.Unlock()
	}
	return analysis.Measurement{Start: q.Start, End: q.End, Value: 0.001, HasValue: true, Count: 100, Requests: 100}, nil
}

// router applies nothing: no proxies.
type router struct{}

func (router) Apply(context.Context, string, rollout.Traffic, rollout.Route) error { return nil }
func (router) Remove(context.Context, string) error                                { return nil }

func manifest(i int, version string) rollout.Manifest {
	m := rollout.Manifest{APIVersion: rollout.APIVersion, Kind: rollout.Kind}
	m.Metadata.Name = "svc-" + strconv.Itoa(i)
	w := 10
	max := analysis.Number(0.05)
	m.Spec = rollout.Spec{
		Version:   version,
		Upstreams: []string{"http://127.0.0.1:1"},
		Traffic:   rollout.Traffic{Listen: fmt.Sprintf("127.0.0.1:%d", 20000+i)},
		Strategy: rollout.Strategy{Canary: rollout.Canary{Steps: []rollout.Step{
			{SetWeight: &w}, {Pause: &rollout.PauseStep{}},
		}}},
		Analysis: rollout.Analysis{
			Interval: rollout.Duration(time.Second),
			Metrics:  []rollout.Metric{{Name: "error-rate", Criteria: analysis.Criteria{Max: &max}}},
		},
	}
	return m
}

func run(n int, d time.Duration, workers int) error {
	dir, err := os.MkdirTemp("", "aviary-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := store.Open(ctx, filepath.Join(dir, "aviary.db"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	p := &provider{interval: time.Second}
	c, err := controller.New(controller.Options{
		Store: db, Routers: map[string]controller.Router{rollout.RouterBuiltin: router{}},
		Providers: map[string]controller.Provider{rollout.ProviderBuiltin: p},
		Workers:   workers,
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for {
		if _, err := c.Command(ctx, "", rollout.Command{}); err != controller.ErrNotRunning {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	// Applied from many goroutines at once, as many clients would: the
	// store commits what arrives together in one transaction.
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, v := range []string{"v1", "v2"} {
				if _, err := c.Apply(ctx, manifest(i, v)); err != nil {
					errs <- fmt.Errorf("apply %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("started %d rollouts in %s\n", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // let the first intervals settle
	p.mu.Lock()
	p.record = true
	p.mu.Unlock()
	runtime.GC()
	if profile != nil {
		pprof.StartCPUProfile(profile)
	}
	time.Sleep(d)
	if profile != nil {
		pprof.StopCPUProfile()
	}
	p.mu.Lock()
	late := append([]time.Duration(nil), p.late...)
	p.record = false
	p.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := rssKiB()
	cancel()
	<-done
	report(n, d, workers, late, ms, rss)
	return nil
}

func report(n int, d time.Duration, workers int, late []time.Duration, ms runtime.MemStats, rss int) {
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	q := func(f float64) time.Duration {
		if len(late) == 0 {
			return 0
		}
		return late[min(len(late)-1, int(f*float64(len(late))))]
	}
	expected := float64(n) * d.Seconds()
	fmt.Printf("rollouts %d, interval 1s, workers %s, measured %s, %d CPUs\n", n, workersText(workers), d, runtime.NumCPU())
	fmt.Printf("decisions      %d (%.0f%% of the %d due)\n", len(late), 100*float64(len(late))/expected, int(expected))
	fmt.Printf("lateness       p50 %s  p90 %s  p99 %s  max %s\n", q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
	fmt.Printf("memory         RSS %d MiB, Go heap in use %d MiB, Go total from OS %d MiB\n", rss/1024, ms.HeapInuse>>20, ms.Sys>>20)
}

// rssKiB reads the process's resident set from /proc.
func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

func workersText(w int) string {
	if w <= 0 {
		return "default"
	}
	return strconv.Itoa(w)
}
