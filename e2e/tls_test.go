package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/rollout"
	"aviary/internal/testcert"
)

// The server over HTTPS with a certificate of a private CA: the command
// line and a separate proxy reach it when told to trust that CA, and are
// refused, with the reason, when not.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert := testcert.Write(t, certFile, keyFile, "aviary-e2e")
	addr, admin := freeAddr(t), freeAddr(t)
	url := "https://" + addr
	srv := start(t, "server", "--data", filepath.Join(dir, "data"), "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile,
		"--data-plane", "http://"+admin)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := client.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not answer over HTTPS (last: %v):\n%s", err, srv.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(srv.log.String(), "listening on "+url) {
		t.Errorf("the server does not say it listens on %s:\n%s", url, srv.log.String())
	}

	e := &env{t: t, dir: dir, addr: addr, url: url, server: srv}
	code, _, errOut := e.aviary("get")
	if code != 1 || !strings.Contains(errOut, "certificate") || !strings.Contains(errOut, "--ca-file") {
		t.Errorf("without the CA: exit %d, %q; want 1, the certificate named and --ca-file suggested", code, errOut)
	}
	t.Setenv("AVIARY_CA_FILE", certFile) // the client commands inherit it
	e.must("get")

	// A separate proxy follows the server over HTTPS.
	upstream := newUpstream(t, "v1", 0)
	listen := freeAddr(t)
	e.apply(manifest("web", "v1", upstream.URL, listen, quickSteps))
	start(t, "proxy", "--server", url, "--ca-file", certFile, "--state", filepath.Join(dir, "proxy.json"), "--admin", admin)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + listen + "/")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK && strings.Contains(string(b), "hello from v1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy did not serve the rollout followed over HTTPS (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := e.must("get", "web"); !strings.Contains(out, string(rollout.PhaseInitialized)) {
		t.Errorf("aviary get over HTTPS:\n%s", out)
	}
}
