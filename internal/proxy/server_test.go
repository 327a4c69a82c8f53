package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHeadersForwarded(t *testing.T) {
	up := newTestUpstream(t, "v1")
	var got http.Header
	var host string
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		got, host = r.Header.Clone(), r.Host
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End", "kept")
	})
	_, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /p HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: basic x\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-End: 2\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"X-Hop", "Proxy-Authorization", "Te", "Connection"} {
		if v, ok := got[h]; ok {
			t.Errorf("upstream got hop-by-hop header %s: %q", h, v)
		}
	}
	checks := map[string]string{"X-Forwarded-For": "10.0.0.1, 127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.example", "X-End": "2"}
	for h, want := range checks {
		if v := got.Get(h); v != want {
			t.Errorf("upstream got %s: %q, want %q", h, v, want)
		}
	}
	if host != "shop.example" {
		t.Errorf("upstream got Host %q, want the client's shop.example", host)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client got hop-by-hop response header %s: %q", h, v)
		}
	}
	if resp.Header.Get("X-End") != "kept" {
		t.Errorf("client lost an end-to-end response header")
	}
}

func TestOnlyConfiguredUpstreamsAreReachable(t *testing.T) {
	up := newTestUpstream(t, "v1")
	other := newTestUpstream(t, "other")
	_, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	otherHost := strings.TrimPrefix(other.URL(), "http://")
	raw := func(req string) string {
		conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		resp.Body.Close()
		return fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Version"))
	}
	if got := raw("GET http://" + otherHost + "/x HTTP/1.1\r\nHost: " + otherHost + "\r\n\r\n"); got != "200 v1" {
		t.Errorf("absolute-form request: %s, want 200 from the configured upstream v1", got)
	}
	if got := raw("CONNECT " + otherHost + " HTTP/1.1\r\nHost: " + otherHost + "\r\n\r\n"); got != "405 " {
		t.Errorf("CONNECT: %s, want 405", got)
	}
	if other.hits.Load() != 0 {
		t.Errorf("an unconfigured upstream was reached %d times", other.hits.Load())
	}
}

func TestOversizedHeadersGet431(t *testing.T) {
	up := newTestUpstream(t, "v1")
	_, addr := startProxy(t, Options{MaxHeaderBytes: 4 << 10}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	st, _ := get(t, newClient(), addr+"/", map[string]string{"X-Big": strings.Repeat("a", 16<<10)})
	if st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", st)
	}
	if up.hits.Load() != 0 {
		t.Errorf("upstream got the oversized request")
	}
}

func TestBodyLimit(t *testing.T) {
	up := newTestUpstream(t, "v1")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	_, addr := startProxy(t, Options{MaxBodyBytes: 1000}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	c := newClient()
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"known length", strings.NewReader(strings.Repeat("x", 2000))},
		{"chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 2000)))},
	} {
		resp, err := c.Post(addr+"/", "text/plain", tc.body)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413", tc.name, resp.StatusCode)
		}
	}
	resp, err := c.Post(addr+"/", "text/plain", io.MultiReader(strings.NewReader("small chunked body")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("small chunked body: status %d, want 200", resp.StatusCode)
	}
}

func TestSlowClientsAreCutOff(t *testing.T) {
	up := newTestUpstream(t, "v1")
	big := strings.Repeat("z", 8<<20)
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.Copy(io.Discard, r.Body)
	})
	opts := Options{ReadHeaderTimeout: 200 * time.Millisecond, BodyReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}
	p, addr := startProxy(t, opts, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// closedWithin reads until the proxy closes the connection; failing
	// to see that within 10 s means the slow client was not cut off.
	closedWithin := func(conn net.Conn, what string) string {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		if isTimeout(err) {
			t.Errorf("%s: connection still open after 10s", what)
		}
		return string(b)
	}
	t.Run("headers", func(t *testing.T) {
		conn := dial()
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
		closedWithin(conn, "slow headers")
	})
	t.Run("body", func(t *testing.T) {
		conn := dial()
		io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
		out := closedWithin(conn, "slow body")
		if !strings.HasPrefix(out, "HTTP/1.1 408") && out != "" {
			t.Errorf("slow body got %q, want 408 or a closed connection", firstLine(out))
		}
	})
	t.Run("reader", func(t *testing.T) {
		conn := dial()
		conn.(*net.TCPConn).SetReadBuffer(4096)
		before := measure(t, p, "v1", RoleStable).Requests
		io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		// Read nothing: the proxy's writes block until its write timeout.
		eventually(t, "the proxy to give up on a client that does not read", func() bool {
			return p.Status().Upstreams[0].InFlight == 0 && up.hits.Load() > 0
		})
		if after := measure(t, p, "v1", RoleStable).Requests; after != before {
			t.Errorf("an aborted download counted as %d served requests", after-before)
		}
	})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

func TestWebSocketPassThrough(t *testing.T) {
	up := newTestUpstream(t, "v1")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
		// Echo lines until the client closes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(conn, "echo "+line)
		}
	})
	p, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The first frame travels with the handshake.
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\nhello\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("got %d with Upgrade %q, want 101 websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"hello", "second"} {
		if msg != "hello" {
			io.WriteString(conn, msg+"\n")
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "echo "+msg+"\n" {
			t.Fatalf("got %q, %v; want %q", line, err, "echo "+msg)
		}
	}
	if w := measure(t, p, "v1", RoleStable); w.Requests != 1 || w.Errors != 0 {
		t.Errorf("upgrade recorded as %d requests, %d errors; want 1, 0", w.Requests, w.Errors)
	}
}

func TestStreamedResponsesAreFlushed(t *testing.T) {
	up := newTestUpstream(t, "v1")
	next := make(chan struct{})
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "second\n")
	})
	_, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	resp, err := newClient().Get(addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The first line arrives while the upstream still holds the second.
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("got %q, %v before the upstream finished; want the flushed first line", line, err)
	}
	close(next)
	if line, _ := br.ReadString('\n'); line != "second\n" {
		t.Errorf("got %q, want second", line)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "aviary test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestHTTP2(t *testing.T) {
	up := newTestUpstream(t, "v1")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), b)
	})
	table := Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}}
	t.Run("tls", func(t *testing.T) {
		cert, key := writeCert(t)
		p, err := New(Options{Name: "tls"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(context.Background())
		p.Update(table)
		if err := p.Listen(context.Background(), ListenConfig{Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}); err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: true,
		}}
		resp, err := c.Post("https://"+p.Addr().String()+"/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "https body" {
			t.Errorf("got HTTP/%d %q, want HTTP/2 %q", resp.ProtoMajor, b, "https body")
		}
	})
	t.Run("tls http/1.1", func(t *testing.T) {
		// HTTP/1.1 over TLS goes to the proxy's own HTTP/1 server, which
		// must know the request came over TLS (X-Forwarded-Proto).
		cert, key := writeCert(t)
		p, err := New(Options{Name: "tls1"})
		if err != nil {
			t.Fatal(err)
		}
		p.Update(table)
		if err := p.Listen(context.Background(), ListenConfig{Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}); err != nil {
			t.Fatal(err)
		}
		var dials atomic.Int32
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		for i := range 3 {
			resp, err := c.Post("https://"+p.Addr().String()+"/", "text/plain", strings.NewReader(fmt.Sprint("body", i)))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 1 || resp.TLS == nil || string(b) != fmt.Sprint("https body", i) {
				t.Errorf("request %d: got HTTP/%d %q, want HTTP/1.1 over TLS %q", i, resp.ProtoMajor, b, fmt.Sprint("https body", i))
			}
		}
		if n := dials.Load(); n != 1 {
			t.Errorf("%d connections for 3 requests, want 1 kept alive", n)
		}
		// A client offering no ALPN at all is served HTTP/1.1 too.
		conn, err := tls.Dial("tcp", p.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		raw, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.HasPrefix(string(raw), "HTTP/1.1 200") || !strings.HasSuffix(string(raw), "https ") {
			t.Errorf("without ALPN: got %q", raw)
		}
		// A handshake that never comes does not hold up the shutdown.
		idle, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Run("h2c", func(t *testing.T) {
		_, addr := startProxy(t, Options{H2C: true}, table)
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protos}}
		resp, err := c.Get(addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "http " {
			t.Errorf("got HTTP/%d %q, want HTTP/2 %q", resp.ProtoMajor, b, "http ")
		}
	})
	t.Run("bad certificate files", func(t *testing.T) {
		p, _ := New(Options{Name: "bad"})
		defer p.Close(context.Background())
		err := p.Listen(context.Background(), ListenConfig{Addr: "127.0.0.1:0", CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"})
		if err == nil || !strings.Contains(err.Error(), "/nonexistent.pem") {
			t.Errorf("Listen with missing files = %v, want an error naming the file", err)
		}
	})
}

func TestInFlightRequestKeepsItsVersion(t *testing.T) {
	v1, v2 := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	started, release := make(chan struct{}), make(chan struct{})
	v1.setHandler(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "v1 done")
	})
	p, addr := startProxy(t, Options{}, Table{Generation: 5, Stable: Backend{Version: "v1", Upstreams: []string{v1.URL()}}})
	type result struct {
		body string
		err  error
	}
	done := make(chan result)
	go func() {
		resp, err := newClient().Get(addr + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{body: string(b)}
	}()
	<-started
	if ok, err := p.Update(Table{Generation: 6, Stable: Backend{Version: "v2", Upstreams: []string{v2.URL()}}}); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	close(release)
	if r := <-done; r.err != nil || r.body != "v1 done" {
		t.Errorf("in-flight request: %q, %v; want it finished by v1", r.body, r.err)
	}
	if _, v := get(t, newClient(), addr+"/", nil); v != "v2" {
		t.Errorf("new request went to %s, want v2", v)
	}
	// An older generation is ignored without error.
	ok, err := p.Update(Table{Generation: 5, Stable: Backend{Version: "v1", Upstreams: []string{v1.URL()}}})
	if ok || err != nil {
		t.Errorf("Update(older generation) = %v, %v; want false, nil", ok, err)
	}
	if tb, _ := p.Table(); tb.Stable.Version != "v2" {
		t.Errorf("table stable = %s after an older update, want v2", tb.Stable.Version)
	}
}

func TestWeightChangesUnderLoad(t *testing.T) {
	stable, canary := newTestUpstream(t, "v1"), newTestUpstream(t, "v2")
	p, addr := startProxy(t, Options{}, twoVersions(stable, canary, 0))
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := newClient()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(addr + "/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := range 1000 {
		tb := twoVersions(stable, canary, (i*37)%101)
		tb.Generation = int64(i + 2)
		if i%100 == 50 { // now and then, new upstream objects too
			tb.Stable.Upstreams = []string{stable.URL() + "/"}
		}
		if _, err := p.Update(tb); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// Let the generators run into the last table too.
	eventually(t, "requests under the final table", func() bool { return ok.Load() > 200 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed while the weights changed 1,000 times; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if stable.hits.Load() == 0 || canary.hits.Load() == 0 {
		t.Errorf("stable got %d and canary %d requests, want both some", stable.hits.Load(), canary.hits.Load())
	}
}

func TestCloseDrainsInFlight(t *testing.T) {
	up := newTestUpstream(t, "v1")
	started, release := make(chan struct{}), make(chan struct{})
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	p, err := New(Options{Name: "drain"})
	if err != nil {
		t.Fatal(err)
	}
	p.Update(Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	if err := p.Listen(context.Background(), ListenConfig{Addr: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addr := p.Addr().String()
	done := make(chan string)
	go func() {
		resp, err := newClient().Get("http://" + addr + "/")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	<-started
	closed := make(chan error)
	go func() { closed <- p.Close(context.Background()) }()
	eventually(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-done; got != "finished" {
		t.Errorf("in-flight request during Close: %q, want finished", got)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := p.Update(Table{Generation: 2, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}}); err == nil {
		t.Error("Update after Close succeeded, want an error")
	}
}

func TestRelistenMovesTheListener(t *testing.T) {
	up := newTestUpstream(t, "v1")
	p, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	if err := p.Listen(context.Background(), ListenConfig{Addr: "localhost:0"}); err != nil {
		t.Fatal(err)
	}
	newAddr := "http://" + p.Addr().String()
	if newAddr == addr {
		t.Fatalf("listener did not move from %s", addr)
	}
	if st, _ := get(t, newClient(), newAddr+"/", nil); st != 200 {
		t.Errorf("new listener: status %d", st)
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://")); err == nil {
		t.Errorf("old listener %s still accepts", addr)
	}
}

func TestNoTableAnswers503(t *testing.T) {
	_, addr := startProxy(t, Options{}, Table{})
	if st, _ := get(t, newClient(), addr+"/", nil); st != http.StatusServiceUnavailable {
		t.Errorf("status %d before any table, want 503", st)
	}
}

func TestUpstreamFailuresAnswer502And504(t *testing.T) {
	slow := newTestUpstream(t, "slow")
	slow.setHandler(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	p, addr := startProxy(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond, Ejection: Ejection{Failures: -1}},
		Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{slow.URL()}}})
	if st, _ := get(t, newClient(), addr+"/", nil); st != http.StatusGatewayTimeout {
		t.Errorf("slow upstream: status %d, want 504", st)
	}
	p.Update(Table{Generation: 2, Stable: Backend{Version: "v1", Upstreams: []string{deadAddr(t)}}})
	if st, _ := get(t, newClient(), addr+"/", nil); st != http.StatusBadGateway {
		t.Errorf("dead upstream: status %d, want 502", st)
	}
	if w := measure(t, p, "v1", RoleStable); w.Requests != 2 || w.Errors != 2 {
		t.Errorf("recorded %d requests, %d errors; want 2, 2", w.Requests, w.Errors)
	}
}

func TestOptionsValidation(t *testing.T) {
	_, err := New(Options{ErrorClasses: []int{7}, History: time.Millisecond})
	for _, want := range []string{"name: empty", "errorClasses: 7", "history: 1ms"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want an error containing %q", err, want)
		}
	}
}
