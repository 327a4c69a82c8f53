package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// The proxy speaks HTTP/1.1 to upstreams over its own small client: a LIFO
// pool of idle connections per upstream and no goroutines per connection.
// Profiles showed net/http's Transport (two goroutines per connection and a
// channel hand-off per request) to be the largest cost of a plain
// httputil.ReverseProxy.

// upConn is one connection to an upstream.
type upConn struct {
	u         *upstream
	nc        net.Conn
	br        *bufio.Reader
	tp        *textproto.Reader // over br
	bw        *bufio.Writer
	resp      upResponse // the response being read, reused
	idleSince int64
	reused    bool
	// readDeadline is the read deadline in force (zero: none).
	readDeadline time.Time
}

// errDial marks a failure to connect: nothing was sent, so any request may
// be tried on another upstream.
type errDial struct{ err error }

func (e errDial) Error() string { return e.err.Error() }
func (e errDial) Unwrap() error { return e.err }

// conn returns an idle connection to u, or a new one.
func (u *upstream) conn(ctx context.Context, now int64) (*upConn, error) {
	opts := &u.p.opts
	u.mu.Lock()
	for len(u.idle) > 0 {
		c := u.idle[len(u.idle)-1]
		u.idle = u.idle[:len(u.idle)-1]
		u.mu.Unlock()
		idle := now - c.idleSince
		// A connection idle for a while may have been closed by the
		// upstream; peeking at it costs a system call, so only then.
		if idle > int64(opts.IdleConnTimeout) || idle > int64(time.Second) && !alive(c.nc) {
			c.nc.Close()
			u.mu.Lock()
			continue
		}
		c.reused = true
		return c, nil
	}
	u.mu.Unlock()
	return u.dial(ctx)
}

func (u *upstream) dial(ctx context.Context) (*upConn, error) {
	d := net.Dialer{Timeout: u.p.opts.DialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", u.url.host)
	if err != nil {
		return nil, errDial{err}
	}
	if u.url.tls {
		cfg := u.p.opts.UpstreamTLS.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.url.sni
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		hctx, cancel := context.WithTimeout(ctx, u.p.opts.DialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, errDial{fmt.Errorf("tls handshake with %s: %w", u.url.host, err)}
		}
		nc = tc
	}
	br := bufio.NewReaderSize(nc, 8<<10)
	return &upConn{u: u, nc: nc, br: br, tp: textproto.NewReader(br), bw: bufio.NewWriterSize(nc, 8<<10)}, nil
}

// release returns c to its upstream's pool when reusable, or closes it.
func (c *upConn) release(reusable bool, now int64) {
	if reusable && c.br.Buffered() == 0 {
		u := c.u
		u.mu.Lock()
		if !u.retired && len(u.idle) < u.p.opts.MaxIdleConnsPerUpstream {
			c.idleSince = now
			u.idle = append(u.idle, c)
			u.mu.Unlock()
			return
		}
		u.mu.Unlock()
	}
	c.nc.Close()
}

// armReadDeadline makes the read deadline fall between 3/4 of d and d from
// now, touching the connection (a runtime timer update) only when the one in
// force is outside that range: on a busy connection, rarely.
func (c *upConn) armReadDeadline(d time.Duration) {
	if d <= 0 {
		return
	}
	now := time.Now()
	want := now.Add(d)
	if c.readDeadline.IsZero() || want.Sub(c.readDeadline) > min(d/4, time.Second) {
		c.nc.SetReadDeadline(want)
		c.readDeadline = want
	}
}

// setDeadline sets both deadlines (mirrored requests), or clears them.
func (c *upConn) setDeadline(t time.Time) {
	c.nc.SetDeadline(t)
	c.readDeadline = t
}

// outBody is a request body as sent upstream: none, buffered (and so
// replayable), or streamed from the client.
type outBody struct {
	has    bool
	buf    []byte
	stream io.Reader
	n      int64 // -1 when unknown
}

func (b *outBody) replayable() bool { return !b.has || b.buf != nil }

// exchange sends r to u and reads the response head. On success the caller
// owns the returned connection and must release it once the body is read.
// A request that fails on a reused connection before any answer arrived is
// retried once on a new connection when that is safe.
// A non-zero deadline bounds the whole exchange (mirrored requests).
func (p *Proxy) exchange(ctx context.Context, u *upstream, r *http.Request, body *outBody, upgrade string, deadline time.Time) (*upConn, *upResponse, error) {
	for attempt := 0; ; attempt++ {
		c, err := u.conn(ctx, p.nowNano())
		if err != nil {
			return nil, nil, err
		}
		if !deadline.IsZero() {
			c.setDeadline(deadline)
		}
		resp, err := p.send(ctx, c, r, body, upgrade)
		if err == nil {
			return c, resp, nil
		}
		c.nc.Close()
		if attempt == 0 && c.reused && body.replayable() && idempotent(r, p.opts.IdempotencyHeaders) && ctx.Err() == nil {
			continue
		}
		return nil, nil, err
	}
}

func (p *Proxy) send(ctx context.Context, c *upConn, r *http.Request, body *outBody, upgrade string) (*upResponse, error) {
	// The client's context is not watched while the upstream works: like
	// HAProxy without abortonclose, a request whose client left runs to its
	// end (bounded by ResponseHeaderTimeout), and the answer is dropped.
	c.armReadDeadline(p.opts.ResponseHeaderTimeout)
	p.writeHead(c.bw, c.u, r, body, upgrade)
	if body.has {
		if err := writeBody(c.bw, body); err != nil {
			return nil, err
		}
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	// Informational answers (100 Continue, 103 Early Hints) are dropped;
	// 101 Switching Protocols ends the exchange.
	resp, err := c.readResponse(r.Method)
	if err != nil {
		return nil, err
	}
	if !c.readDeadline.IsZero() && !resp.buffered() {
		// The body may still be coming: it has no deadline (streams may be
		// long); the response head had one.
		c.nc.SetReadDeadline(time.Time{})
		c.readDeadline = time.Time{}
	}
	return resp, nil
}

func writeBody(bw *bufio.Writer, body *outBody) error {
	if body.buf != nil {
		if body.n < 0 {
			cw := httputil.NewChunkedWriter(bw)
			cw.Write(body.buf)
			cw.Close()
			_, err := bw.WriteString("\r\n")
			return err
		}
		_, err := bw.Write(body.buf)
		return err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if body.n < 0 {
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.CopyBuffer(cw, onlyReader{body.stream}, *bp); err != nil {
			return clientBodyError{err}
		}
		cw.Close()
		_, err := bw.WriteString("\r\n")
		return err
	}
	n, err := io.CopyBuffer(bw, onlyReader{io.LimitReader(body.stream, body.n)}, *bp)
	if err == nil && n < body.n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return clientBodyError{err}
	}
	return nil
}

// clientBodyError is a failure to read the client's request body.
type clientBodyError struct{ err error }

func (e clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e clientBodyError) Unwrap() error { return e.err }

// onlyReader hides a reader's WriterTo so that io.CopyBuffer uses the buffer.
type onlyReader struct{ io.Reader }

// writeHead writes the request line and headers, without hop-by-hop headers
// and with X-Forwarded-For, -Proto and -Host.
func (p *Proxy) writeHead(bw *bufio.Writer, u *upstream, r *http.Request, body *outBody, upgrade string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(u.url.prefix)
	switch uri := r.RequestURI; {
	case len(uri) > 0 && uri[0] == '/':
		bw.WriteString(uri)
	case uri == "*" && u.url.prefix == "":
		bw.WriteString(uri)
	default: // absolute-form: only the path and query go upstream
		bw.WriteString(r.URL.EscapedPath())
		if r.URL.RawQuery != "" {
			bw.WriteByte('?')
			bw.WriteString(r.URL.RawQuery)
		}
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	host := r.Host
	if host == "" {
		host = u.url.host
	}
	bw.WriteString(host)
	bw.WriteString("\r\n")
	header := r.Header
	listed := header["Connection"]
	for k, vs := range header {
		if skipRequestHeader(k) || len(listed) > 0 && connectionListed(listed, k) {
			continue
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	bw.WriteString(ip)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	writeField(bw, "X-Forwarded-Host", host)
	if upgrade != "" {
		bw.WriteString("Connection: Upgrade\r\n")
		writeField(bw, "Upgrade", upgrade)
	}
	switch {
	case body.has && body.n >= 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), body.n, 10))
		bw.WriteString("\r\n")
	case body.has:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// skipRequestHeader reports the headers not copied upstream: hop-by-hop
// headers (RFC 9110 7.6.1), framing the proxy writes itself, and the
// forwarding headers it rewrites.
func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Expect",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host":
		return true
	}
	return false
}

// skipResponseHeader reports the hop-by-hop headers of a response.
func skipResponseHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// connectionListed reports whether the Connection header names k.
func connectionListed(connection []string, k string) bool {
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

// upgradeType returns the protocol an HTTP/1.1 request asks to switch to.
func upgradeType(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return ""
	}
	conn, ok := r.Header["Connection"]
	if !ok || !connectionListed(conn, "Upgrade") {
		return ""
	}
	return r.Header.Get("Upgrade")
}

// idempotent reports whether a request may be sent twice: GET, HEAD,
// OPTIONS and TRACE, or any request carrying one of the marker headers.
func idempotent(r *http.Request, markers []string) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	for _, h := range markers {
		if _, ok := r.Header[h]; ok {
			return true
		}
	}
	return false
}

// bufferBody reads up to limit bytes of r's body so that it can be sent
// twice (shield, mirror). When the body is longer, ok is false and the
// returned outBody streams the bytes already read followed by the rest.
func bufferBody(r *http.Request, body io.Reader, limit int64) (out outBody, ok bool, err error) {
	n := r.ContentLength
	if n == 0 {
		return outBody{}, true, nil
	}
	if n > limit {
		return outBody{has: true, stream: body, n: n}, false, nil
	}
	max := limit + 1
	if n > 0 {
		max = n
	}
	buf, err := io.ReadAll(io.LimitReader(body, max))
	if err != nil {
		return outBody{}, false, clientBodyError{err}
	}
	if n > 0 && int64(len(buf)) < n {
		return outBody{}, false, clientBodyError{io.ErrUnexpectedEOF}
	}
	if n < 0 && int64(len(buf)) > limit {
		return outBody{has: true, stream: io.MultiReader(bytes.NewReader(buf), body), n: -1}, false, nil
	}
	if len(buf) == 0 {
		return outBody{}, true, nil
	}
	return outBody{has: true, buf: buf, n: int64(len(buf))}, true, nil
}

// isTimeout reports whether err is a deadline that expired.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
