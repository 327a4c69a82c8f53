// Package daemon assembles `aviary server`: the store, the built-in proxies,
// the providers, webhooks, notifications and load generator, the controller
// and the HTTP API, started and stopped in the right order. It is wiring
// only; every part it starts lives in its own package.
package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"aviary/internal/controller"
	"aviary/internal/loadtest"
	"aviary/internal/manifest"
	"aviary/internal/notify"
	"aviary/internal/provider/prometheus"
	"aviary/internal/provider/web"
	"aviary/internal/rollout"
	"aviary/internal/secret"
	"aviary/internal/server"
	"aviary/internal/store"
	"aviary/internal/webhook"

	providerbuiltin "aviary/internal/provider/builtin"
	providerremote "aviary/internal/provider/remote"
	routerbuiltin "aviary/internal/router/builtin"
	routerremote "aviary/internal/router/remote"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Options configure a server.
type Options struct {
	// DataDir holds the store and the API token (created if missing).
	DataDir string
	// Addr is where the API and dashboard listen ("127.0.0.1:7070"; port 0
	// picks a free one).
	Addr string
	// TLSCertFile and TLSKeyFile, when set, serve the API and dashboard
	// over HTTPS with that certificate, read again when the files change.
	TLSCertFile string
	TLSKeyFile  string
	// Config, when set, is a file of rollout manifests applied at start.
	Config string
	// Token authorizes mutating API calls; empty: read TokenFile, or the
	// data directory's token file, created on first start.
	Token     string
	TokenFile string
	// Notify are the server's own notification channels, sent every
	// rollout's events.
	Notify []rollout.Notification
	// Dashboard is served at /; nil: a placeholder page.
	Dashboard fs.FS
	// Logger receives the server's logs (nil: discarded). Secrets are
	// redacted from it.
	Logger *slog.Logger
	// Version is aviary's version.
	Version string
	// Workers evaluate rollouts concurrently (0: the controller's default).
	Workers int
	// LookupEnv resolves "${ENV}" references (nil: the process environment).
	LookupEnv func(string) (string, bool)
	// RetainRuns, when positive, is how many of each rollout's latest runs
	// keep their measurements; older runs' are pruned at start and every
	// PruneEvery (default: an hour). Runs and events are always kept.
	RetainRuns int
	PruneEvery time.Duration
	// DataPlane, when set, is the admin URL of built-in proxies running as
	// their own process (`aviary proxy`); the server then runs none itself.
	DataPlane string
}

// Daemon is a running server.
type Daemon struct {
	opts     Options
	log      *slog.Logger
	db       *store.DB
	router   *routerbuiltin.Router
	ctrl     *controller.Controller
	api      *server.Server
	http     *http.Server
	listener net.Listener
	scheme   string // of the API: http, or https with TLS
	notifier *notify.Dispatcher
	redactor *secret.Redactor
	token    string
	lock     *os.File // the data directory's lock, held until the store is closed

	cancel context.CancelFunc
	done   chan struct{}
	bg     sync.WaitGroup // background work that uses the store (pruning)
	runErr error
	once   sync.Once
}

// TokenFileName is the API token's file in the data directory.
const TokenFileName = "token"

// Start opens the store, starts the controller, the proxies and the API,
// and applies the config file. It returns once the API is listening.
func Start(ctx context.Context, o Options) (*Daemon, error) {
	if o.DataDir == "" {
		return nil, errors.New("a data directory is required (--data)")
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := lockDataDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: o, done: make(chan struct{}), redactor: secret.NewRedactor(), lock: lock, scheme: "http"}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d.log = slog.New(d.redactor.Handler(log.Handler()))
	token, err := loadToken(o)
	if err != nil {
		d.unlock()
		return nil, err
	}
	d.token = token
	d.redactor.Add(token)
	if err := d.start(ctx); err != nil {
		d.abort()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) start(ctx context.Context) error {
	o := d.opts
	db, err := store.Open(ctx, filepath.Join(o.DataDir, "aviary.db"), store.Options{Logger: d.log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	d.db = db
	reg := prom.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	secrets := &secret.Resolver{LookupEnv: o.LookupEnv, Redactor: d.redactor}
	hooks := webhook.New(webhook.Options{Logger: d.log, Secrets: secrets, Version: o.Version})
	d.notifier, err = notify.New(notify.Options{Global: o.Notify, Logger: d.log, Secrets: secrets, Version: o.Version})
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	var router controller.Router
	var builtin controller.Provider
	if o.DataPlane != "" {
		router = routerremote.New(routerremote.Options{Admin: o.DataPlane})
		builtin = providerremote.New(o.DataPlane, nil)
	} else {
		d.router = routerbuiltin.New(routerbuiltin.Options{Logger: d.log, Registerer: reg})
		router, builtin = d.router, providerbuiltin.New(d.router)
	}
	loads := loadtest.New(loadtest.Options{Logger: d.log, Version: o.Version})
	d.ctrl, err = controller.New(controller.Options{
		Store:   db,
		Routers: map[string]controller.Router{rollout.RouterBuiltin: router},
		Providers: map[string]controller.Provider{
			rollout.ProviderBuiltin:    builtin,
			rollout.ProviderPrometheus: prometheus.New(prometheus.Options{Logger: d.log, LookupEnv: o.LookupEnv}),
			rollout.ProviderWeb:        web.New(web.Options{Logger: d.log, LookupEnv: o.LookupEnv}),
		},
		Hooks:      hookAdapter{hooks},
		Notifier:   notifyAdapter{d.notifier},
		Loader:     loadAdapter{loads, d.log},
		Logger:     d.log,
		Registerer: reg,
		Workers:    o.Workers,
		Check:      checkSecrets(hooks, d.notifier),
		LoadKey:    []byte(d.token),
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	go func() {
		defer close(d.done)
		d.runErr = d.ctrl.Run(runCtx)
	}()
	if o.RetainRuns > 0 {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.prune(runCtx, o.RetainRuns)
		}()
	}
	if err := d.waitRunning(ctx); err != nil {
		return err
	}
	d.api, err = server.New(server.Options{Controller: d.ctrl, History: db, Token: d.token, Logger: d.log,
		Gatherer: reg, Dashboard: o.Dashboard})
	if err != nil {
		return err
	}
	if err := d.listen(); err != nil {
		return err
	}
	if o.Config != "" {
		if _, err := d.applyConfig(ctx, o.Config); err != nil {
			return err
		}
	}
	return nil
}

// prune deletes the measurements of old runs now and then every
// PruneEvery, until ctx ends.
func (d *Daemon) prune(ctx context.Context, keep int) {
	every := d.opts.PruneEvery
	if every <= 0 {
		every = time.Hour
	}
	for {
		start := time.Now()
		n, err := d.db.Prune(ctx, keep)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.log.Error("prune measurements", "err", err)
		case n > 0:
			d.log.Info("pruned measurements of old runs", "points", n, "keep", keep, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// waitRunning waits until the controller has loaded the store.
func (d *Daemon) waitRunning(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := d.ctrl.Command(ctx, "", rollout.Command{}); !errors.Is(err, controller.ErrNotRunning) {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("controller: %w", d.runErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the controller did not start within a minute")
		}
	}
}

func (d *Daemon) listen() error {
	addr := d.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:7070"
	}
	var tlsConfig *tls.Config
	if d.opts.TLSCertFile != "" || d.opts.TLSKeyFile != "" {
		if d.opts.TLSCertFile == "" || d.opts.TLSKeyFile == "" {
			return errors.New("TLS needs both a certificate and a key file")
		}
		certs, err := newCertReloader(d.opts.TLSCertFile, d.opts.TLSKeyFile, func(err error) {
			d.log.Error("reload the TLS certificate; serving the previous one", "err", err)
		})
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
		d.scheme = "https"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	d.listener = l
	d.http = &http.Server{Handler: d.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: tlsConfig, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	go func() {
		var err error
		if tlsConfig != nil {
			err = d.http.ServeTLS(l, "", "") // with HTTP/2
		} else {
			err = d.http.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("api server", "err", err)
		}
	}()
	return nil
}

// applyConfig applies the rollouts of the config file; a rollout that is
// already stored with the same spec is left as it is.
func (d *Daemon) applyConfig(ctx context.Context, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	ds, err := manifest.Decode(data)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	var problems []string
	for _, dm := range ds {
		for _, e := range dm.Validate() {
			problems = append(problems, fmt.Sprintf("%s: %s", dm.Manifest.Metadata.Name, e))
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("config %s is invalid:\n  %s", path, strings.Join(problems, "\n  "))
	}
	var created, configured, unchanged int
	for _, dm := range ds {
		res, err := d.ctrl.Apply(ctx, dm.Manifest)
		if err != nil {
			return "", fmt.Errorf("config %s: apply %s: %w", path, dm.Manifest.Metadata.Name, err)
		}
		switch {
		case res.Created:
			created++
		case res.Changed:
			configured++
		default:
			unchanged++
		}
	}
	return fmt.Sprintf("%d rollout(s): %d created, %d configured, %d unchanged", len(ds), created, configured, unchanged), nil
}

// Reload applies the config file again (as `aviary apply` would: rollouts
// it no longer lists are left alone) and says what changed. A file with
// an invalid rollout changes nothing.
func (d *Daemon) Reload(ctx context.Context) (string, error) {
	if d.opts.Config == "" {
		return "", errors.New("there is no config file to reload (start the server with --config)")
	}
	return d.applyConfig(ctx, d.opts.Config)
}

// Addr is where the API listens.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// URL is the API's base URL; on a wildcard address (0.0.0.0, [::]), the
// loopback one, which reaches it from this machine.
func (d *Daemon) URL() string {
	host, port, err := net.SplitHostPort(d.Addr())
	if err != nil {
		return d.scheme + "://" + d.Addr()
	}
	if d.AllInterfaces() {
		host = "127.0.0.1"
	}
	return d.scheme + "://" + net.JoinHostPort(host, port)
}

// AllInterfaces reports whether the API listens on every interface.
func (d *Daemon) AllInterfaces() bool {
	host, _, err := net.SplitHostPort(d.Addr())
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsUnspecified()
}

// Token is the API token.
func (d *Daemon) Token() string { return d.token }

// Controller is the running controller.
func (d *Daemon) Controller() *controller.Controller { return d.ctrl }

// Router is the built-in router (the embedded proxies); nil with a
// separate data plane.
func (d *Daemon) Router() *routerbuiltin.Router { return d.router }

// Shutdown stops the API, then the controller, then drains the proxies and
// closes the store. It is safe to call more than once.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var errs []error
	d.once.Do(func() {
		if d.api != nil {
			d.api.Close()
		}
		if d.http != nil {
			if err := d.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("api: %w", err))
			}
		}
		errs = append(errs, d.abort())
	})
	return errors.Join(errs...)
}

// abort stops what started, in reverse order.
func (d *Daemon) abort() error {
	var errs []error
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.bg.Wait()
		if d.runErr != nil {
			errs = append(errs, d.runErr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.router != nil {
		if err := d.router.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("proxies: %w", err))
		}
	}
	if d.notifier != nil {
		d.notifier.Close()
	}
	if d.db != nil {
		if err := d.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	d.unlock()
	return errors.Join(errs...)
}

// unlock releases the data directory.
func (d *Daemon) unlock() {
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}

// loadToken returns the API token: given, from a file, or created in the
// data directory with mode 0600 on first start.
func loadToken(o Options) (string, error) {
	if o.Token != "" {
		return o.Token, nil
	}
	path := o.TokenFile
	if path == "" {
		path = filepath.Join(o.DataDir, TokenFileName)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return "", err
			}
			tok := hex.EncodeToString(b)
			if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
				return "", fmt.Errorf("write the API token: %w", err)
			}
			return tok, nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("the API token in %s is shorter than 16 characters", path)
	}
	return tok, nil
}
