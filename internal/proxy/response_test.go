package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawUpstream answers every request on a connection with the same bytes,
// then closes the connection if close is set.
func rawUpstream(t *testing.T, answer string, close bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(conn, answer)
					if close {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestUpstreamResponseFraming(t *testing.T) {
	cases := []struct {
		name       string
		answer     string
		close      bool
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, "hello", nil},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n", false, 200, "abcde", nil},
		{"until close", "HTTP/1.0 200 OK\r\n\r\nall of it", true, 200, "all of it", nil},
		{"informational skipped", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false, 201, "ok", nil},
		{"no content", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false, 204, "", map[string]string{"X-A": "1"}},
		{"transfer-encoding beats content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false, 200, "ok", nil},
		{"conflicting content lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", false, 502, "", nil},
		{"unsupported transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", true, 502, "", nil},
		{"bad status line", "HTTP/2 200 OK\r\n\r\n", true, 502, "", nil},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 502, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := rawUpstream(t, tc.answer, tc.close)
			_, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up}}})
			c := newClient()
			for i := range 2 { // the second request reuses the connection when it can
				resp, err := c.Get(addr + "/")
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("request %d: reading body: %v", i, err)
				}
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tc.wantStatus)
				}
				if tc.wantStatus < 300 && string(b) != tc.wantBody {
					t.Errorf("request %d: body %q, want %q", i, b, tc.wantBody)
				}
				for k, v := range tc.wantHeader {
					if resp.Header.Get(k) != v {
						t.Errorf("header %s = %q, want %q", k, resp.Header.Get(k), v)
					}
				}
				if strings.Contains(tc.name, "trailer") && resp.Trailer.Get("X-Sum") != "5" {
					t.Errorf("trailer X-Sum = %q, want 5", resp.Trailer.Get("X-Sum"))
				}
			}
		})
	}
}

func TestTruncatedUpstreamBodyAbortsTheClient(t *testing.T) {
	up := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", true)
	p, addr := startProxy(t, Options{}, Table{Generation: 1, Stable: Backend{Version: "v1", Upstreams: []string{up}}})
	// The client sees an error: before the head if nothing was flushed
	// yet, or while reading the body.
	resp, err := newClient().Get(addr + "/")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("client read a truncated body without an error")
	}
	eventually(t, "the truncated response to be recorded as an error", func() bool {
		w := measure(t, p, "v1", RoleStable)
		return w.Requests == 1 && w.Errors == 1
	})
}
