package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWithNetHTTPServer runs the tests of client-facing behaviour again with
// net/http's server in front, the one TLS and h2c listeners use.
func TestWithNetHTTPServer(t *testing.T) {
	netHTTPServer = true
	defer func() { netHTTPServer = false }()
	for name, test := range map[string]func(*testing.T){
		"headers":       TestHeadersForwarded,
		"upstreams":     TestOnlyConfiguredUpstreamsAreReachable,
		"431":           TestOversizedHeadersGet431,
		"body limit":    TestBodyLimit,
		"slow clients":  TestSlowClientsAreCutOff,
		"websocket":     TestWebSocketPassThrough,
		"streaming":     TestStreamedResponsesAreFlushed,
		"framing":       TestUpstreamResponseFraming,
		"load":          TestWeightChangesUnderLoad,
		"close drains":  TestInFlightRequestKeepsItsVersion,
		"shield":        TestShieldRetriesIdempotentCanaryFailures,
		"h1 semantics":  TestHTTP1Semantics,
		"split weights": TestWeightedSplitOverSockets,
		"idle":          TestIdleConnectionsAreClosed,
	} {
		t.Run(name, test)
	}
}

// exchange sends raw bytes on one connection and reads n responses.
func rawExchange(t *testing.T, addr, req string, n int) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, req)
	br := bufio.NewReader(conn)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	// After the last answer the connection is closed when it should be.
	if last := out[len(out)-1]; last.Close {
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("connection still open after a response saying Connection: close (%v)", err)
		}
	}
	return out
}

func body(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

func TestHTTP1Semantics(t *testing.T) {
	up := newTestUpstream(t, "v1")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	})
	_, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	t.Run("pipelined", func(t *testing.T) {
		rs := rawExchange(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3)
		for i, want := range []string{"GET /a ", "POST /b hi", "GET /c "} {
			if got := body(rs[i]); got != want {
				t.Errorf("response %d: %q, want %q", i+1, got, want)
			}
		}
		if !rs[2].Close {
			t.Error("no Connection: close after the client asked for it")
		}
	})
	t.Run("chunked request", func(t *testing.T) {
		rs := rawExchange(t, addr, "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1)
		if got := body(rs[0]); got != "POST /u abc" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		rs := rawExchange(t, addr, "GET /old HTTP/1.0\r\n\r\n", 1)
		if got := body(rs[0]); got != "GET /old " || !rs[0].Close {
			t.Errorf("got %q, close %v; want the answer and a closed connection", got, rs[0].Close)
		}
		rs = rawExchange(t, addr, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /k2 HTTP/1.0\r\n\r\n", 2)
		if body(rs[1]) != "GET /k2 " {
			t.Errorf("second request on a kept-alive HTTP/1.0 connection: %q", body(rs[1]))
		}
	})
	t.Run("length and chunked", func(t *testing.T) {
		// Transfer-Encoding wins (RFC 9112 6.3), as in net/http; the
		// upstream gets the body re-framed by the proxy, never the
		// client's ambiguous framing.
		rs := rawExchange(t, addr, "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n", 1)
		if got := body(rs[0]); got != "POST /s ok" {
			t.Errorf("got %q, want the chunked body", got)
		}
	})
	t.Run("100-continue", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(conn)
		line, _ := br.ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("got %q before sending the body, want 100 Continue", line)
		}
		br.ReadString('\n')
		io.WriteString(conn, "data")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || body(resp) != "PUT /e data" {
			t.Errorf("after 100 Continue: %v %v", resp, err)
		}
	})
	for _, tc := range []struct{ name, req, status string }{
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"bad header name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", "400"},
		{"control byte in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", "400"},
		{"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505"},
		{"bad expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", "417"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := rawExchange(t, addr, tc.req, 1)
			if got := rs[0].Status[:3]; got != tc.status && !(netHTTPServer && got[0] == '4' && tc.status[0] == '5') {
				t.Errorf("status %s, want %s", rs[0].Status, tc.status)
			}
		})
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	up := newTestUpstream(t, "v1")
	_, addr := startProxy(t, Options{IdleTimeout: 200 * time.Millisecond}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up.URL()}}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	// Then nothing: the proxy closes the idle connection.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF from the proxy closing it", err)
	}
}
