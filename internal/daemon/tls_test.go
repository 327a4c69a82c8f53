package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aviary/internal/testcert"
)

// The API over HTTPS (with HTTP/2), and a renewed certificate served
// without a restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := testcert.Write(t, certFile, keyFile, "first")
	ctx := context.Background()
	d, err := Start(ctx, Options{DataDir: filepath.Join(dir, "data"), Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(ctx)
	if got := d.URL(); got != "https://"+d.Addr() {
		t.Fatalf("URL() = %s, want https", got)
	}
	served := func(trust *x509.Certificate) (*x509.Certificate, string, error) {
		pool := x509.NewCertPool()
		pool.AddCert(trust)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(d.URL() + "/healthz")
		if err != nil {
			return nil, "", err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("/healthz: %s", res.Status)
		}
		return res.TLS.PeerCertificates[0], res.Proto, nil
	}
	cert, proto, err := served(first)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "first" || proto != "HTTP/2.0" {
		t.Errorf("served %q over %s, want the first certificate over HTTP/2.0", cert.Subject.CommonName, proto)
	}
	// Plain HTTP to the HTTPS port gets no API.
	if res, err := http.Get("http://" + d.Addr() + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served the API")
		}
	}

	// Renew: the new pair is served within a few seconds.
	time.Sleep(10 * time.Millisecond) // a later modification time
	second := testcert.Write(t, certFile, keyFile, "second")
	deadline := time.Now().Add(10 * time.Second)
	for {
		cert, _, err := served(second)
		if err == nil && cert.Subject.CommonName == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate was not served (last: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(dir, "data"), Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err == nil {
		t.Fatal("started with a bad certificate")
	}
	if want := "TLS certificate " + certFile; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	// The refused start released the data directory.
	d, err := Start(context.Background(), Options{DataDir: filepath.Join(dir, "data"), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("after a refused start: %v", err)
	}
	d.Shutdown(context.Background())
}
