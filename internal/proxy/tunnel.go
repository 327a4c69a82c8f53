package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// tunnels tracks upgraded connections (WebSocket and others), which the HTTP
// server forgets once they are hijacked, so that Close can drain them.
type tunnels struct {
	mu sync.Mutex
	m  map[*tunnelConns]struct{}
	wg sync.WaitGroup
}

type tunnelConns struct{ client, upstream net.Conn }

func (ts *tunnels) add(tc *tunnelConns) {
	ts.mu.Lock()
	if ts.m == nil {
		ts.m = map[*tunnelConns]struct{}{}
	}
	ts.m[tc] = struct{}{}
	ts.wg.Add(1)
	ts.mu.Unlock()
}

func (ts *tunnels) remove(tc *tunnelConns) {
	ts.mu.Lock()
	delete(ts.m, tc)
	ts.mu.Unlock()
	ts.wg.Done()
}

// wait waits for every tunnel to end, or for ctx; then it closes the rest.
func (ts *tunnels) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { ts.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	ts.mu.Lock()
	for tc := range ts.m {
		tc.client.Close()
		tc.upstream.Close()
	}
	ts.mu.Unlock()
	<-done
}

// tunnel completes an upgrade the upstream accepted: it takes over the
// client's connection, relays the 101 answer, and copies bytes both ways
// until either side closes.
func (p *Proxy) tunnel(w http.ResponseWriter, resp *upResponse, c *upConn) {
	c.setDeadline(time.Time{})
	cc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		c.nc.Close()
		plainError(w, http.StatusBadGateway, "cannot upgrade this connection")
		return
	}
	cc.SetDeadline(time.Time{})
	tc := &tunnelConns{client: cc, upstream: c.nc}
	p.tunnels.add(tc)
	defer p.tunnels.remove(tc)
	defer cc.Close()
	defer c.nc.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	// Whichever direction ends first ends both: closing the connections
	// is the only way to stop the other copy.
	done := make(chan struct{})
	go func() {
		// Bytes the client sent after its request are in brw's buffer.
		io.Copy(c.nc, brw.Reader)
		cc.Close()
		c.nc.Close()
		close(done)
	}()
	// Bytes the upstream sent after its 101 are in c.br's buffer.
	io.Copy(cc, c.br)
	cc.Close()
	c.nc.Close()
	<-done
}
