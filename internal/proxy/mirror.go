package proxy

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Reasons a mirrored request was dropped.
const (
	dropQueueFull = iota
	dropBody
	dropUnavailable
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"queue-full", "body-too-large", "canary-unavailable"}

// mirrorJob is a copy of a stable request to send to the canary.
type mirrorJob struct {
	be   *backend
	req  *http.Request
	body []byte
}

// enqueueMirror queues a copy of r for the canary; a full queue drops it.
// body is the request's buffered body (nil for none); it is shared, never
// written.
func (p *Proxy) enqueueMirror(r *http.Request, canary *backend, body []byte) {
	u := *r.URL
	mr := &http.Request{
		Method:        r.Method,
		URL:           &u,
		RequestURI:    r.RequestURI,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Host:          r.Host,
		Header:        r.Header.Clone(),
		RemoteAddr:    r.RemoteAddr,
		TLS:           r.TLS,
		ContentLength: int64(len(body)),
	}
	mr.Header["X-Aviary-Mirror"] = []string{"1"}
	p.mirrorMu.RLock()
	defer p.mirrorMu.RUnlock()
	if p.mirrorClosed {
		return
	}
	select {
	case p.mirrorQ <- &mirrorJob{be: canary, req: mr, body: body}:
	default:
		p.mirrorDropped[dropQueueFull].Add(1)
	}
}

func (p *Proxy) mirrorWorker() {
	defer p.mirrorWG.Done()
	for j := range p.mirrorQ {
		p.mirrorOne(j)
	}
}

// mirrorOne sends one shadow request, drops the reply and records its
// status and latency as the canary's mirrored measurements.
func (p *Proxy) mirrorOne(j *mirrorJob) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Mirror.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	start := p.now()
	now := start.UnixNano()
	u := j.be.pool.pick(now)
	if u == nil {
		p.mirrorDropped[dropUnavailable].Add(1)
		return
	}
	var body outBody
	if len(j.body) > 0 {
		body = outBody{has: true, buf: j.body, n: int64(len(j.body))}
	}
	u.inflight.Add(1)
	defer u.inflight.Add(-1)
	c, resp, err := p.exchange(ctx, u, j.req, &body, "", deadline)
	failed := err != nil
	if err == nil {
		_, cerr := io.Copy(io.Discard, &resp.Body)
		c.setDeadline(time.Time{})
		// resp lives in the connection: read it before releasing that.
		status := resp.StatusCode
		c.release(cerr == nil && !resp.Close, p.nowNano())
		failed = p.isErr(status)
		u.report(status < 500, now)
	} else {
		u.report(false, now)
	}
	p.record(j.be.series[KindMirrored], start, failed)
}
