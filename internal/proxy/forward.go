package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// ServeHTTP routes one request to a version and forwards it to one of that
// version's upstreams. The proxy only ever connects to the upstreams of its
// table: the request's own URL and Host never choose where it goes.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cc *clientConn
	if r.ProtoMajor == 1 {
		cc, _ = r.Context().Value(clientConnKey{}).(*clientConn)
	}
	p.serve(w, r, cc)
}

// serve is ServeHTTP with the client connection's state (nil for HTTP/2).
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, cc *clientConn) {
	t := p.table.Load()
	// Deadlines run on real time; measurements on the injected clock.
	wallStart := time.Now()
	start := wallStart
	if !p.wallClock {
		start = p.now()
	}
	rc := http.NewResponseController(w)
	p.armWriteDeadline(rc, cc, wallStart)
	switch {
	case t == nil:
		plainError(w, http.StatusServiceUnavailable, "no route configured")
		return
	case r.Method == http.MethodConnect:
		plainError(w, http.StatusMethodNotAllowed, "CONNECT is not supported")
		return
	case r.RequestURI == "*" && r.Method != http.MethodOptions:
		plainError(w, http.StatusBadRequest, "only OPTIONS may ask for *")
		return
	case p.opts.MaxBodyBytes > 0 && r.ContentLength > p.opts.MaxBodyBytes:
		plainError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	d := t.route(r, start.UnixNano(), p.opts.Rand)
	if d.fallback {
		p.fallbacks.Add(1)
		if !p.canaryDown.Swap(true) {
			p.log.Warn("canary has no healthy upstream: its share goes to stable", "canary", t.canary.version)
		}
	} else if d.be == t.canary && p.canaryDown.Load() && p.canaryDown.Swap(false) {
		p.log.Info("canary has a healthy upstream again", "canary", t.canary.version)
	}
	upgrade := upgradeType(r)
	x := &exchangeState{t: t, d: d, upgrade: upgrade, start: start, wallStart: wallStart, cc: cc}
	if !p.prepareBody(w, r, rc, x) {
		return
	}
	p.forward(w, r, rc, x)
}

// exchangeState is one request's routing and body as it is forwarded.
type exchangeState struct {
	t       *compiled
	d       decision
	upgrade string
	start   time.Time // on the injected clock
	// wallStart is the real time the request arrived, for deadlines.
	wallStart time.Time
	cc        *clientConn // nil for HTTP/2
	body      outBody
	shield    bool // a failure on the canary may be retried on stable
}

// prepareBody sets up the request body: limited, guarded against slow
// clients, and buffered when it may be sent twice (mirror, shield). It
// enqueues the mirror copy. It answers the client and returns false when the
// body cannot be read.
func (p *Proxy) prepareBody(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, x *exchangeState) bool {
	t, d := x.t, x.d
	mirror := t.mirror > 0 && d.be == t.stable && t.canary != nil && x.upgrade == "" && p.opts.Rand()%100 < t.mirror
	x.shield = t.shield && d.be == t.canary && x.upgrade == "" && idempotent(r, p.opts.IdempotencyHeaders)
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		if mirror {
			p.enqueueMirror(r, t.canary, nil)
		}
		return true
	}
	var src io.Reader = r.Body
	if p.opts.MaxBodyBytes > 0 {
		src = http.MaxBytesReader(w, r.Body, p.opts.MaxBodyBytes)
	}
	if p.opts.BodyReadTimeout > 0 {
		src = &deadlineReader{r: src, rc: rc, timeout: p.opts.BodyReadTimeout}
	}
	if !mirror && !x.shield {
		x.body = outBody{has: true, stream: src, n: r.ContentLength}
		return true
	}
	limit := p.opts.ShieldBodyLimit
	if mirror && p.opts.Mirror.BodyLimit > limit {
		limit = p.opts.Mirror.BodyLimit
	}
	body, ok, err := bufferBody(r, src, limit)
	if err != nil {
		p.clientBodyFailed(w, err)
		return false
	}
	x.body = body
	if !ok {
		x.shield = false
	}
	if mirror {
		if ok && int64(len(body.buf)) <= p.opts.Mirror.BodyLimit {
			p.enqueueMirror(r, t.canary, body.buf)
		} else {
			p.mirrorDropped[dropBody].Add(1)
		}
	}
	return true
}

func (p *Proxy) clientBodyFailed(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		plainError(w, http.StatusRequestEntityTooLarge, "request body too large")
	case isTimeout(err):
		plainError(w, http.StatusRequestTimeout, "request body timed out")
	default:
		plainError(w, http.StatusBadRequest, "could not read the request body")
	}
}

// forward sends the request to the decided version and copies the answer
// back, retrying on stable when the shield allows it.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, x *exchangeState) {
	ctx := r.Context()
	be, kind := x.d.be, x.d.kind
	record := true
	if x.d.fallback {
		// The request was the canary's, which had no healthy upstream:
		// stable serves it, and it counts as the canary's error (as a
		// shielded failure does), so that a canary whose upstreams all
		// fail cannot hide from the analysis behind the fallback.
		defer p.record(x.t.canary.series[kind], x.start, true)
		record = false
	}
	c, resp, u, err := p.try(ctx, be, r, x)
	if x.shield && p.failed(resp, err) && ctx.Err() == nil && !isClientBodyError(err) {
		// The canary failed an idempotent request: it counts as the
		// canary's error, and the user gets stable's answer instead.
		p.record(be.series[kind], x.start, true)
		if c != nil {
			c.release(false, 0)
			u.inflight.Add(-1)
		}
		p.shieldRetries.Add(1)
		be, record = x.t.stable, false
		c, resp, u, err = p.try(ctx, be, r, x)
		if p.failed(resp, err) {
			p.shieldFailed.Add(1)
		}
	}
	if err != nil {
		p.exchangeFailed(w, r, err, be, kind, x.start, record)
		return
	}
	defer u.inflight.Add(-1)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if record {
			p.record(be.series[kind], x.start, false)
		}
		p.tunnel(w, resp, c)
		return
	}
	cookie := ""
	if be == x.d.be {
		cookie = x.d.cookie
	}
	upErr, clientErr := p.copyResponse(w, rc, x.cc, resp, cookie)
	// resp lives in the connection: once released, another request may
	// reuse it.
	status, reusable := resp.StatusCode, upErr == nil && clientErr == nil && !resp.Close
	c.release(reusable, p.nowNano())
	if record && clientErr == nil {
		p.record(be.series[kind], x.start, upErr != nil || p.isErr(status))
	}
	if upErr != nil || clientErr != nil {
		// The status line is out: the only way left to tell the client the
		// answer is incomplete is to break the connection (or stream).
		panic(http.ErrAbortHandler)
	}
}

// try forwards to one upstream of be. A failure to connect, which sent
// nothing, is tried once more on another upstream. On success the caller
// owns c and one count of u.inflight.
func (p *Proxy) try(ctx context.Context, be *backend, r *http.Request, x *exchangeState) (*upConn, *upResponse, *upstream, error) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		now := p.nowNano()
		u := be.pool.pick(now)
		if u == nil {
			u = be.pool.pickAny() // no healthy upstream: trying beats refusing
		}
		u.inflight.Add(1)
		var c *upConn
		var resp *upResponse
		c, resp, err = p.exchange(ctx, u, r, &x.body, x.upgrade, time.Time{})
		if err == nil {
			u.report(resp.StatusCode < 500, now)
			return c, resp, u, nil
		}
		u.inflight.Add(-1)
		if ctx.Err() != nil || isClientBodyError(err) {
			return nil, nil, nil, err
		}
		u.report(false, now)
		if _, dialFailed := err.(errDial); !dialFailed || len(be.pool.ups) == 1 {
			break
		}
	}
	return nil, nil, nil, err
}

// failed reports whether an exchange counts as an error of the version.
func (p *Proxy) failed(resp *upResponse, err error) bool {
	return err != nil || p.isErr(resp.StatusCode)
}

func isClientBodyError(err error) bool {
	var ce clientBodyError
	return errors.As(err, &ce)
}

func (p *Proxy) exchangeFailed(w http.ResponseWriter, r *http.Request, err error, be *backend, kind Kind, start time.Time, record bool) {
	switch {
	case isClientBodyError(err):
		p.clientBodyFailed(w, err)
		return
	case r.Context().Err() != nil:
		return // the client left; nobody to answer, nothing to blame
	}
	status := http.StatusBadGateway
	if isTimeout(err) {
		status = http.StatusGatewayTimeout
	}
	p.log.Debug("upstream exchange failed", "version", be.version, "error", err)
	if record {
		p.record(be.series[kind], start, true)
	}
	plainError(w, status, http.StatusText(status))
}

// copyResponse writes the upstream's answer to the client. upErr is a
// failure reading the upstream, clientErr one writing to the client.
func (p *Proxy) copyResponse(w http.ResponseWriter, rc *http.ResponseController, cc *clientConn, resp *upResponse, cookie string) (upErr, clientErr error) {
	h := w.Header()
	listed := resp.Header["Connection"]
	for k, vs := range resp.Header {
		if skipResponseHeader(k) || len(listed) > 0 && connectionListed(listed, k) {
			continue
		}
		h[k] = vs
	}
	if cookie != "" {
		h.Add("Set-Cookie", cookie)
	}
	// ServeHTTP armed the write deadline; arm it again, as the upstream
	// may have taken a good part of it, and before every further chunk.
	p.armWriteDeadline(rc, cc, time.Now())
	w.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for chunk := 0; ; chunk++ {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if chunk > 0 {
				p.armWriteDeadline(rc, cc, time.Now())
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return nil, err
			}
			if stream {
				if err := rc.Flush(); err != nil {
					return nil, err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr, nil
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	return nil, nil
}

// armWriteDeadline makes the client's write deadline fall between 3/4 of
// WriteTimeout and WriteTimeout from now. On an HTTP/1 connection it touches
// the connection only when the deadline in force is outside that range; the
// deadline also outlives the handler, covering the server's final flush.
func (p *Proxy) armWriteDeadline(rc *http.ResponseController, cc *clientConn, now time.Time) {
	wt := p.opts.WriteTimeout
	if wt <= 0 {
		return
	}
	want := now.Add(wt)
	if cc == nil {
		rc.SetWriteDeadline(want)
		return
	}
	if want.Sub(cc.writeDeadline) > min(wt/4, time.Second) {
		rc.SetWriteDeadline(want)
		cc.writeDeadline = want
	}
}

func (p *Proxy) record(s *series, start time.Time, isErr bool) {
	end := p.now()
	s.record(end.Unix(), end.Sub(start), isErr)
}

// deadlineReader gives each read of a request body its own deadline, so a
// client that stops sending is cut off while a slow but steady upload goes on.
type deadlineReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineReader) Read(b []byte) (int, error) {
	d.rc.SetReadDeadline(time.Now().Add(d.timeout))
	n, err := d.r.Read(b)
	if err == io.EOF {
		// The body is done: the server's own read (which watches for the
		// client leaving) must not inherit this deadline. After a timeout
		// the deadline stays, so the connection is closed, not drained.
		d.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func plainError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, "aviary: "+msg+"\n")
}
