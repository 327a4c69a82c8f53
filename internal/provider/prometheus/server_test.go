package prometheus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// prometheusBinary is the Debian package's server, which CI installs.
const prometheusBinary = "/usr/bin/prometheus"

// server is a real Prometheus started by the tests on loopback, scraping a
// test exporter every second.
type server struct {
	addr string // http://127.0.0.1:PORT
}

var (
	shared     *server
	sharedErr  error
	sharedOnce sync.Once
	stopShared func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopShared != nil {
		stopShared()
	}
	os.Exit(code)
}

// startServer starts Prometheus once for the package and waits until it
// has scraped the exporter. It fails the test (never skips) when the binary
// is missing.
func startServer(t *testing.T) *server {
	t.Helper()
	if _, err := os.Stat(prometheusBinary); err != nil {
		t.Fatalf("%s is missing: install the Debian package (apt-get install prometheus); CI's .ci/run installs it", prometheusBinary)
	}
	sharedOnce.Do(func() { shared, sharedErr = launch() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// The exporter's series: a value and a request count per rollout, version
// and role, constant so that any instant in the window gives them.
var exported = []struct {
	rollout, version, role string
	value, requests        float64
}{
	{"web", "v2", "canary", 0.25, 1200},
	{"web", "v1", "stable", 0.5, 24000},
	{"split", "v2", "canary", 1, 10}, // two series for one version
	{"split", "v2", "canary-b", 2, 10},
}

func launch() (*server, error) {
	reg := prometheus.NewRegistry()
	value := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "providertest_value", Help: "a value per version"}, []string{"rollout", "version", "role"})
	reqs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "providertest_requests", Help: "requests per version"}, []string{"rollout", "version", "role"})
	reg.MustRegister(value, reqs)
	for _, e := range exported {
		value.WithLabelValues(e.rollout, e.version, e.role).Set(e.value)
		reqs.WithLabelValues(e.rollout, e.version, e.role).Set(e.requests)
	}
	exp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	expSrv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go expSrv.Serve(exp)

	dir, err := os.MkdirTemp("", "aviary-prometheus-")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: providertest
    static_configs: [{targets: ["%s"]}]
`, exp.Addr())
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	var logs bytes.Buffer
	cmd := exec.Command(prometheusBinary,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", prometheusBinary, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stopShared = func() {
		cmd.Process.Kill()
		<-exited
		expSrv.Close()
		os.RemoveAll(dir)
	}
	s := &server{addr: "http://" + listen}
	// Wait (bounded) until every exported series has been scraped.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("prometheus exited early:\n%s", logs.String())
		default:
		}
		if n, err := s.count(`count(providertest_value) + count(up{job="providertest"} == 1)`); err == nil && n == float64(len(exported)+1) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("prometheus at %s had not scraped the exporter after 60s:\n%s", listen, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// count runs an instant query straight against the HTTP API.
func (s *server) count(q string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.addr+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("%d results", len(r.Data.Result))
	}
	var f float64
	_, err = fmt.Sscan(r.Data.Result[0].Value[1].(string), &f)
	return f, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
