package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// statusLine is how every response the proxy writes begins.
var statusLine = regexp.MustCompile(`^HTTP/1\.1 [1-5][0-9][0-9] `)

// FuzzH1Request sends arbitrary bytes to the proxy's HTTP/1 server over a
// real loopback connection and half-closes it. Whatever comes in, the proxy
// must not crash, must answer only with well-formed HTTP/1.1 status lines
// (or nothing), must close the connection once the client is done, and must
// still serve a proper request afterwards.
func FuzzH1Request(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET http://elsewhere.example/ HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n",
		"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: " + string(bytes.Repeat([]byte("x"), 40<<10)) + "\r\n\r\n",
		"GET / HTTP/9.9\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
		"",
	} {
		f.Add([]byte(seed))
	}
	up := newTestUpstream(f, "v1")
	opts := Options{Name: "fuzz", ReadHeaderTimeout: 2 * time.Second, BodyReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	_, base := startProxy(f, opts, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	addr := base[len("http://"):]
	c := newClient()
	f.Fuzz(func(t *testing.T, raw []byte) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			conn.Write(raw)
			conn.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("reading the answer to %.300q: %v (got %.300q)", raw, err, out)
		}
		if len(out) > 0 && !statusLine.Match(out) {
			t.Fatalf("answer to %.300q does not begin with a status line: %.300q", raw, out)
		}
		// The proxy still serves.
		res, err := c.Get(base + "/")
		if err != nil {
			t.Fatalf("after %.300q: %v", raw, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("after %.300q: %s", raw, res.Status)
		}
	})
}
