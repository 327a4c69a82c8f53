package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"aviary/internal/daemon"
	"aviary/internal/demo"
	"aviary/internal/rollout"
	"aviary/internal/server"
	"github.com/spf13/cobra"
)

// demoOptions are the demo's flags.
type demoOptions struct {
	fault     string
	addr      string
	listen    string
	rps       float64
	dataDir   string
	keep      bool
	errorRate float64
	latency   time.Duration
	share     float64
}

// Faults the demo's canary can have.
const (
	faultNone    = "none"
	faultErrors  = "errors"
	faultLatency = "latency"
	faultTail    = "tail"
)

// demoSpec releases the demo's canary in about a minute: the default
// analysis, checked every 5 seconds, at three weights.
const demoSpec = `apiVersion: aviary.dev/v1alpha1
kind: Rollout
metadata:
  name: demo
spec:
  version: %s
  upstreams: [%q]
  traffic:
    router: builtin
    listen: %q
  strategy:
    canary:
      steps:
        - setWeight: 10
        - analysis: {duration: 15s}
        - setWeight: 40
        - analysis: {duration: 15s}
        - setWeight: 70
        - analysis: {duration: 15s}
  analysis:
    interval: 5s
  progressDeadline: 3m
`

func newDemoCmd(sys *system) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [--fault none|errors|latency|tail]",
		Short: "Release a sample canary on this machine and watch aviary decide",
		Long: `demo runs everything on this machine: two sample apps (stable v1 and canary
v2), the server with its proxy, and a load generator. It releases v2 and shows
the run live until it ends, with the dashboard's and the API's addresses.

Without --fault the canary is healthy and is promoted; --fault errors makes
10% of its requests fail, --fault latency adds 150ms to every request and
--fault tail adds 600ms to 5% of requests: each is rolled back. The demo exits
0 when the run ends as its fault says it should, 1 otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, sys, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.fault, "fault", faultNone, "what is wrong with the canary: none, errors, latency or tail")
	f.StringVar(&o.addr, "addr", "127.0.0.1:7070", "address of the API and dashboard")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the demo service's proxy")
	f.Float64Var(&o.rps, "rps", 300, "requests per second the load generator sends")
	f.StringVar(&o.dataDir, "data", "", "data directory (default: a temporary one, removed at the end)")
	f.BoolVar(&o.keep, "keep", false, "keep everything running after the run ends, until interrupted")
	f.Float64Var(&o.errorRate, "error-rate", 0.10, "share of the canary's requests that fail with --fault errors")
	f.DurationVar(&o.latency, "latency", 0, "extra latency with --fault latency (default 150ms) or tail (default 600ms)")
	f.Float64Var(&o.share, "tail-share", 0.05, "share of the canary's requests slowed with --fault tail")
	return cmd
}

// canaryApp turns the fault flags into the canary's behaviour.
func (o demoOptions) canaryApp() (demo.AppOptions, error) {
	app := demo.AppOptions{Version: "v2", ErrorRate: 0.002, Latency: 5 * time.Millisecond}
	switch o.fault {
	case faultNone:
	case faultErrors:
		if o.errorRate <= 0 || o.errorRate > 1 {
			return app, usagef("--error-rate must be between 0 and 1, got %g", o.errorRate)
		}
		app.ErrorRate = o.errorRate
	case faultLatency:
		app.SlowShare, app.SlowExtra = 1, orDuration(o.latency, 150*time.Millisecond)
	case faultTail:
		if o.share <= 0 || o.share > 1 {
			return app, usagef("--tail-share must be between 0 and 1, got %g", o.share)
		}
		app.SlowShare, app.SlowExtra = o.share, orDuration(o.latency, 600*time.Millisecond)
	default:
		return app, usagef("unknown fault %q (want none, errors, latency or tail)", o.fault)
	}
	return app, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func runDemo(cmd *cobra.Command, sys *system, o demoOptions) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	canaryOpts, err := o.canaryApp()
	if err != nil {
		return err
	}
	if o.rps <= 0 || o.rps > 5000 {
		return usagef("--rps must be between 1 and 5000, got %g", o.rps)
	}
	stable, err := demo.StartApp(demo.AppOptions{Version: "v1", ErrorRate: 0.002, Latency: 5 * time.Millisecond})
	if err != nil {
		return err
	}
	defer stable.Close()
	canary, err := demo.StartApp(canaryOpts)
	if err != nil {
		return err
	}
	defer canary.Close()
	dir, cleanup, err := dataDirOrTemp(o.dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	d, err := daemon.Start(ctx, daemon.Options{DataDir: dir, Addr: o.addr, Version: Version, Dashboard: dashboard(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fmt.Errorf("start the server: %w (is another aviary running? try --addr and --listen)", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.Shutdown(sctx)
	}()
	u, _ := url.Parse(d.URL())
	c := &client{base: u, token: d.Token(), user: "demo", http: sys.http}

	fmt.Fprintf(out, "aviary demo: releasing v2 (fault: %s) behind http://%s\n", o.fault, o.listen)
	fmt.Fprintf(out, "  dashboard  %s/\n  API        %s/api/v1 (token: %s)\n\n", d.URL(), d.URL(), d.Token())
	if err := c.do(ctx, http.MethodPost, "/api/v1/rollouts", []byte(fmt.Sprintf(demoSpec, "v1", stable.URL(), o.listen)), "application/yaml", nil); err != nil {
		return fmt.Errorf("apply the demo rollout: %w", err)
	}
	load, err := demo.StartLoad(ctx, demo.LoadOptions{URL: "http://" + o.listen + "/", RPS: o.rps})
	if err != nil {
		return err
	}
	defer load.Stop()
	if err := c.post(ctx, rolloutPath("demo", "release"), map[string]any{"version": "v2", "upstreams": []string{canary.URL()}}, nil); err != nil {
		return fmt.Errorf("release v2: %w", err)
	}
	st, err := followDemo(ctx, sys, c, out, load)
	if err != nil {
		return err
	}
	want := rollout.PhaseFailed
	if o.fault == faultNone {
		want = rollout.PhaseSucceeded
	}
	fmt.Fprintf(out, "\ndemo finished: %s: %s\n", st.Phase, st.Message)
	if o.keep {
		fmt.Fprintf(out, "still running (--keep): dashboard %s/ — Ctrl-C to stop\n", d.URL())
		<-ctx.Done()
	}
	if st.Phase != want {
		return fmt.Errorf("the run ended %s; with fault %q it should have ended %s", st.Phase, o.fault, want)
	}
	return nil
}

// followDemo shows the run and the load until the run ends: redrawn in
// place on a terminal, as lines that change otherwise.
func followDemo(ctx context.Context, sys *system, c *client, out io.Writer, load *demo.Load) (server.Status, error) {
	terminal, _ := sys.terminal(out)
	drawn, last := 0, ""
	started := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var st server.Status
		if err := c.get(ctx, rolloutPath("demo"), &st); err != nil {
			return st, err
		}
		lines := append(statusLines(sys, st), loadLine(load, time.Since(started)))
		if terminal {
			if drawn > 0 {
				fmt.Fprintf(out, "\x1b[%dA\x1b[J", drawn)
			}
			fmt.Fprintln(out, strings.Join(lines, "\n"))
			drawn = len(lines)
		} else if head := fmt.Sprintf("%s %d%% step %d/%d", st.Phase, st.CanaryWeight, st.Step, st.Steps); head != last {
			fmt.Fprintf(out, "%s  %s\n  %s\n", time.Since(started).Round(time.Second), strings.Join(lines[:1], ""), lines[len(lines)-1])
			last = head
		}
		if st.Run > 0 && !st.Phase.Active() {
			if !terminal {
				fmt.Fprintln(out, strings.Join(lines, "\n"))
			}
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-tick.C:
		}
	}
}

func loadLine(load *demo.Load, elapsed time.Duration) string {
	by, total := load.Stats()
	parts := []string{fmt.Sprintf("load      %s requests in %s", count(total.Requests), elapsed.Round(time.Second))}
	for _, v := range []string{"v1", "v2"} {
		if n := by[v]; n.Requests > 0 {
			parts = append(parts, fmt.Sprintf("%s %s (%s failed)", v, count(n.Requests), count(n.Errors)))
		}
	}
	if n := by[""]; n.Requests > 0 {
		parts = append(parts, fmt.Sprintf("unanswered %s", count(n.Requests)))
	}
	return "  " + strings.Join(parts, ", ")
}
