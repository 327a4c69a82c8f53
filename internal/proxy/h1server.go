package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h1Server serves HTTP/1.x without net/http's server. Profiles
// showed net/http's per-request work around the handler (a goroutine
// reading in the background to notice clients leaving, a context, a copy
// and a sort of the response header) to be the largest cost left; this
// server parses requests with the same parser (http.ReadRequest, which
// validates header names and values and frames the body), applies the
// checks net/http's server adds (version, Host), and writes responses
// itself. On TLS listeners it serves the connections that chose HTTP/1.1
// (see tlsSplitter); HTTP/2 and h2c use net/http's server.
type h1Server struct {
	p  *Proxy
	ln net.Listener

	mu      sync.Mutex
	conns   map[*h1Conn]bool // value: a request is in progress
	closing bool
	wg      sync.WaitGroup
	done    chan struct{}
}

func newH1Server(p *Proxy, ln net.Listener) *h1Server {
	s := &h1Server{p: p, ln: ln, conns: map[*h1Conn]bool{}, done: make(chan struct{})}
	go s.accept()
	return s
}

// acceptRetry accepts the next connection, waiting and retrying after
// errors such as running out of file descriptors; it fails only once ln
// is closed.
func acceptRetry(ln net.Listener, log *slog.Logger) (net.Conn, error) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err == nil || errors.Is(err, net.ErrClosed) {
			return nc, err
		}
		log.Warn("accept failed", "addr", ln.Addr().String(), "error", err)
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		time.Sleep(backoff)
	}
}

func (s *h1Server) accept() {
	defer close(s.done)
	for {
		nc, err := acceptRetry(s.ln, s.p.log)
		if err != nil {
			return
		}
		c := newH1Conn(s, nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = false
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// setBusy records whether c is in a request; false when the server is
// closing and c should stop.
func (s *h1Server) setBusy(c *h1Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = busy
	return true
}

// forget stops tracking c: it closed, or was hijacked (the proxy's tunnels
// track those).
func (s *h1Server) forget(c *h1Conn) {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	if ok {
		s.wg.Done()
	}
}

// shutdown stops accepting, closes idle connections, lets requests in
// progress finish until ctx is done, then closes every connection.
func (s *h1Server) shutdown(ctx context.Context) error {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	s.closing = true
	for c, busy := range s.conns {
		if !busy {
			c.nc.Close()
		}
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-finished
	return fmt.Errorf("draining %s: %w", s.ln.Addr(), ctx.Err())
}

// h1Conn is one client connection.
type h1Conn struct {
	s            *h1Server
	nc           net.Conn
	lr           io.LimitedReader // under br: bounds the request head
	br           *bufio.Reader
	bw           *bufio.Writer
	remote       string
	tls          *tls.ConnectionState // of a TLS connection, handshake done
	readDeadline time.Time
	cc           clientConn
	w            h1Writer
}

func newH1Conn(s *h1Server, nc net.Conn) *h1Conn {
	c := &h1Conn{s: s, nc: nc, remote: nc.RemoteAddr().String()}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.lr = io.LimitedReader{R: nc, N: math.MaxInt64}
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c
}

func (c *h1Conn) setReadDeadline(t time.Time) {
	c.nc.SetReadDeadline(t)
	c.readDeadline = t
}

var headEnd = []byte("\r\n\r\n")

func (c *h1Conn) serve() {
	s, p := c.s, c.s.p
	hijacked := false
	defer func() {
		if !hijacked {
			s.forget(c)
			c.nc.Close()
		}
	}()
	for {
		// Wait for a request no longer than the idle timeout; the deadline
		// is touched only when the one in force is out of range.
		if idle := p.opts.IdleTimeout; idle > 0 {
			if want := time.Now().Add(idle); c.readDeadline.IsZero() || want.Sub(c.readDeadline) > min(idle/4, time.Second) || c.readDeadline.After(want) {
				c.setReadDeadline(want)
			}
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !s.setBusy(c, true) {
			return
		}
		// A head that is all in the buffer needs no deadline; one that is
		// still arriving gets ReadHeaderTimeout (slow clients).
		if buf, _ := c.br.Peek(c.br.Buffered()); !bytes.Contains(buf, headEnd) && p.opts.ReadHeaderTimeout > 0 {
			c.setReadDeadline(time.Now().Add(p.opts.ReadHeaderTimeout))
		}
		keep, hj := c.serveOne()
		if hj {
			hijacked = true
			return
		}
		if !keep {
			c.linger()
			return
		}
		if !s.setBusy(c, false) {
			return
		}
	}
}

// linger closes the sending side after the last response and reads what
// the client still sends, for a moment, before the connection is closed:
// closing with unread input makes the kernel reset the connection, and
// the client may then lose the response it has not read yet (a 431, a 400,
// an answer with Connection: close while it pipelines more).
func (c *h1Conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c.nc, 256<<10)
}

// serveOne reads and answers one request. keep: the connection can carry
// another; hijacked: the handler took the connection over.
func (c *h1Conn) serveOne() (keep, hijacked bool) {
	p := c.s.p
	c.lr.N = int64(p.opts.MaxHeaderBytes) + 4096 // as net/http: slack for the request line
	req, err := http.ReadRequest(c.br)
	if err != nil {
		switch {
		case c.lr.N <= 0:
			c.fail(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isTimeout(err):
		default:
			c.fail(http.StatusBadRequest, "malformed request")
		}
		return false, false
	}
	c.lr.N = math.MaxInt64
	if status, msg := checkRequest(req); status != 0 {
		c.fail(status, msg)
		return false, false
	}
	req.RemoteAddr, req.TLS = c.remote, c.tls
	w := &c.w
	*w = h1Writer{c: c, req: req, header: make(http.Header, 8)}
	w.closeAfter = req.Close // Connection: close, or HTTP/1.0 without keep-alive
	if ex, ok := req.Header["Expect"]; ok {
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			c.fail(http.StatusExpectationFailed, "unsupported Expect")
			return false, false
		}
		if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 {
			req.Body = &continueReader{r: req.Body, w: w}
		}
	}
	body := req.Body
	if !c.handle(w, req) || w.hijacked {
		return false, w.hijacked
	}
	if err := w.finish(); err != nil {
		return false, false
	}
	// Whatever of the body the handler left unread must go before the next
	// request; a lot of it is not worth reading.
	if req.ContentLength != 0 && !w.closeAfter {
		c.setReadDeadline(time.Now().Add(max(p.opts.BodyReadTimeout, time.Second)))
		if n, _ := io.CopyN(io.Discard, body, 256<<10+1); n > 256<<10 {
			return false, false
		}
		if _, err := body.Read(make([]byte, 1)); err != io.EOF {
			return false, false
		}
	}
	return !w.closeAfter, false
}

// handle runs the proxy's handler; false when it aborted the response.
func (c *h1Conn) handle(w *h1Writer, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				c.s.p.log.Error("handler panic", "panic", fmt.Sprint(v))
			}
			ok = false
		}
	}()
	c.s.p.serve(w, req, &c.cc)
	return true
}

// checkRequest applies the checks net/http's server makes after parsing.
func checkRequest(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	// http.ReadRequest has moved the Host header (or an absolute URI's
	// host) to req.Host and refused several Host headers.
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return http.StatusBadRequest, "missing required Host header"
	}
	if !validHost(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	return 0, ""
}

// validHost accepts the bytes of a URI host and port (RFC 3986 reg-name,
// IP literal).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		ch := h[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:[]%@", ch) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// fail answers a request that cannot be served and closes the connection.
func (c *h1Conn) fail(status int, msg string) {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\naviary: %s\n",
		status, http.StatusText(status), len(msg)+9, msg)
	c.bw.Flush()
}

// continueReader sends "100 Continue" before the first read of the body.
type continueReader struct {
	r    io.ReadCloser
	w    *h1Writer
	sent bool
}

func (cr *continueReader) Read(b []byte) (int, error) {
	if !cr.sent {
		cr.sent = true
		if !cr.w.wroteHeader {
			cr.w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := cr.w.c.bw.Flush(); err != nil {
				return 0, err
			}
		}
	}
	return cr.r.Read(b)
}

func (cr *continueReader) Close() error { return cr.r.Close() }

// h1Writer is the http.ResponseWriter of h1Server. It also offers what
// http.ResponseController needs: flushing, deadlines, hijacking.
type h1Writer struct {
	c           *h1Conn
	req         *http.Request
	header      http.Header
	wroteHeader bool
	noBody      bool
	chunked     bool
	closeAfter  bool
	hijacked    bool
}

func (w *h1Writer) Header() http.Header { return w.header }

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code < 200 || code > 999 {
		return // informational answers are not relayed
	}
	w.wroteHeader = true
	bw := w.c.bw
	h := w.header
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	_, hasLength := h["Content-Length"]
	if !hasLength && !w.noBody {
		if w.req.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			w.closeAfter = true // HTTP/1.0: the end of the body is the close
		}
	}
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || k == "Transfer-Encoding" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				continue
			}
			writeField(bw, k, v)
		}
	}
	if _, ok := h["Date"]; !ok {
		writeField(bw, "Date", httpDate())
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case w.req.ProtoMajor == 1 && w.req.ProtoMinor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

func (w *h1Writer) Write(b []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if len(b) == 0 {
		return 0, nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(b)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(b)
		if err == nil {
			_, err = bw.WriteString("\r\n")
		}
		return n, err
	}
	return bw.Write(b)
}

// finish ends the response: the last chunk and trailers, then a flush.
func (w *h1Writer) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		for k, vs := range w.header {
			name, ok := strings.CutPrefix(k, http.TrailerPrefix)
			if !ok {
				continue
			}
			for _, v := range vs {
				if !strings.ContainsAny(v, "\r\n") {
					writeField(bw, name, v)
				}
			}
		}
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

func (w *h1Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.c.bw.Flush()
}

func (w *h1Writer) Flush() { w.FlushError() }

func (w *h1Writer) SetReadDeadline(t time.Time) error {
	w.c.setReadDeadline(t)
	return nil
}

func (w *h1Writer) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// Hijack hands the connection to the caller, with the bytes the client
// already sent in the returned reader.
func (w *h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader {
		return nil, nil, errors.New("hijack after the response started")
	}
	w.hijacked = true
	w.c.lr.N = math.MaxInt64
	w.c.s.forget(w.c)
	return w.c.nc, bufio.NewReadWriter(w.c.br, w.c.bw), nil
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := cachedDate.Load(); d != nil && d.sec == now {
		return d.text
	}
	d := &dateText{sec: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	sec  int64
	text string
}

var cachedDate atomic.Pointer[dateText]
