package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"aviary/internal/daemon"
	"aviary/internal/dataplane"
	"aviary/internal/rollout"
	"github.com/spf13/cobra"
)

// DefaultDataDir is where `aviary server` keeps its store and token.
const DefaultDataDir = "aviary-data"

func newServerCmd(sys *system) *cobra.Command {
	var o daemon.Options
	var level string
	var channels []string
	cmd := &cobra.Command{
		Use:   "server [--config FILE] [--data DIR] [--addr 127.0.0.1:7070] [--token-file F]",
		Short: "Run the control plane, the built-in proxies, the API and the dashboard",
		Long: `server runs aviary on this machine: the controller that releases rollouts, a
built-in proxy per rollout, the REST API and the dashboard. Rollouts are kept
in an embedded store in the data directory and survive restarts; --config
applies a file of rollouts at start. Mutating API calls need the token, read
from --token-file or AVIARY_TOKEN, or created in the data directory on first
start (mode 0600). SIGTERM or Ctrl-C stops it gracefully: proxies drain.
SIGHUP applies --config again (rollouts it no longer lists are left alone).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := parseLevel(level)
			if err != nil {
				return err
			}
			if o.Notify, err = parseChannels(channels); err != nil {
				return err
			}
			if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if o.RetainRuns < 0 {
				return usagef("--retain-runs must be 0 (keep all) or a number of runs, got %d", o.RetainRuns)
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			o.Token = sys.getenv("AVIARY_TOKEN")
			o.Version = Version
			o.Dashboard = dashboard()
			return serve(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "", "file of rollout manifests applied at start")
	f.StringVar(&o.DataDir, "data", DefaultDataDir, "data directory (store and token)")
	f.StringVar(&o.Addr, "addr", "127.0.0.1:7070", "address of the API and dashboard")
	f.StringVar(&o.TLSCertFile, "tls-cert", "", "serve the API and dashboard over HTTPS with this PEM certificate (chain), read again when it changes")
	f.StringVar(&o.TLSKeyFile, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&o.TokenFile, "token-file", "", "file holding the API token (default: AVIARY_TOKEN, or DATA/token)")
	f.StringArrayVar(&channels, "notify", nil, "a notification channel for every rollout: TYPE[@SEVERITY]=URL, e.g. 'slack@warn=${SLACK_WEBHOOK}' (repeatable)")
	f.StringVar(&o.DataPlane, "data-plane", "", "`URL` of the admin endpoint of proxies run apart with aviary proxy (default: the server runs them)")
	f.IntVar(&o.RetainRuns, "retain-runs", 50, "keep the measurements of each rollout's last N runs, pruning older ones hourly (0: keep all; runs and events are always kept)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newProxyCmd(sys *system) *cobra.Command {
	var o dataplane.Options
	var level, caFile string
	cmd := &cobra.Command{
		Use:   "proxy --server URL [--state FILE] [--admin 127.0.0.1:7071]",
		Short: "Run the built-in proxies as their own process (data plane only)",
		Long: `proxy runs the built-in proxies apart from the server: it follows the
server's routing through a watch on its API and keeps serving with the last
known routing, persisted in --state, while the server is down or restarting.
Run the server with --data-plane pointing at this process's --admin address,
where the server reads which routes are applied and the proxies' measurements.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := parseLevel(level)
			if err != nil {
				return err
			}
			if o.Server == "" {
				o.Server = sys.getenv("AVIARY_SERVER")
			}
			if o.Server == "" {
				return usagef("give the server's URL with --server (or AVIARY_SERVER)")
			}
			if ca := cmp.Or(caFile, sys.getenv("AVIARY_CA_FILE")); ca != "" {
				if o.Client, err = withCA(&http.Client{}, ca); err != nil {
					return err
				}
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			ctx := cmd.Context()
			d, err := dataplane.Start(ctx, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "aviary proxy following %s; admin %s; state %s\n", o.Server, d.AdminURL(), o.State)
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "aviary proxy stopping: draining")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return d.Close(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "the server's URL (default: AVIARY_SERVER)")
	f.StringVar(&o.State, "state", "aviary-proxy-state.json", "file keeping the last known routing")
	f.StringVar(&caFile, "ca-file", "", "a PEM file of CA certificates to trust for an https server, besides the system's (default: AVIARY_CA_FILE)")
	f.StringVar(&o.Admin, "admin", "127.0.0.1:7071", "address of the admin endpoint (applied routes, measurements, /metrics)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// parseChannels reads --notify values: TYPE[@SEVERITY]=URL, where URL may
// be an environment reference; "file:PATH" reads the URL from a file.
func parseChannels(vals []string) ([]rollout.Notification, error) {
	var out []rollout.Notification
	for _, v := range vals {
		kind, url, ok := strings.Cut(v, "=")
		if !ok || kind == "" || url == "" {
			return nil, usagef("--notify %q: want TYPE[@SEVERITY]=URL", v)
		}
		n := rollout.Notification{Type: kind}
		if t, sev, ok := strings.Cut(kind, "@"); ok {
			n.Type, n.Severity = t, sev
		}
		if path, ok := strings.CutPrefix(url, "file:"); ok {
			n.URLFile = path
		} else {
			n.URL = url
		}
		out = append(out, n)
	}
	return out, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, usagef("unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// serve runs a server until ctx ends.
func serve(ctx context.Context, out io.Writer, o daemon.Options) error {
	d, err := daemon.Start(ctx, o)
	if err != nil {
		return err
	}
	tokenAt := "AVIARY_TOKEN"
	switch {
	case o.TokenFile != "":
		tokenAt = o.TokenFile
	case o.Token == "":
		tokenAt = filepath.Join(o.DataDir, daemon.TokenFileName)
	}
	where := d.URL()
	if d.AllInterfaces() {
		where += " and every other interface"
	}
	fmt.Fprintf(out, "aviary server listening on %s (dashboard %s/, API %s/api/v1)\n", where, d.URL(), d.URL())
	fmt.Fprintf(out, "API token: %s; data: %s\n", tokenAt, o.DataDir)
	// SIGHUP applies the config file again.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			if what, err := d.Reload(ctx); err != nil {
				fmt.Fprintf(out, "aviary server: SIGHUP: %v\n", err)
			} else {
				fmt.Fprintf(out, "aviary server: reloaded %s: %s\n", o.Config, what)
			}
		}
	}
	fmt.Fprintln(out, "aviary server stopping: draining proxies")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Shutdown(sctx)
}

// dataDirOrTemp returns dir, or a new temporary directory.
func dataDirOrTemp(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "aviary-demo-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}
