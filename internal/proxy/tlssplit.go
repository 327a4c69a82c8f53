package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tlsSplitter accepts TLS connections, completes their handshakes, and
// hands each to the server of the protocol it chose by ALPN: HTTP/2 to
// net/http's server, HTTP/1.1 (or none) to the proxy's own HTTP/1 server,
// which costs less per request.
type tlsSplitter struct {
	ln      net.Listener // the TCP listener
	cfg     *tls.Config
	timeout time.Duration // of a handshake
	log     *slog.Logger
	h1, h2  *connListener
	done    chan struct{}
	wg      sync.WaitGroup // handshakes in progress

	mu      sync.Mutex
	pending map[net.Conn]bool // connections in their handshake
	closing bool
}

func newTLSSplitter(ln net.Listener, cfg *tls.Config, timeout time.Duration, log *slog.Logger) *tlsSplitter {
	s := &tlsSplitter{ln: ln, cfg: cfg, timeout: timeout, log: log, h1: newConnListener(ln.Addr()), h2: newConnListener(ln.Addr()),
		done: make(chan struct{}), pending: map[net.Conn]bool{}}
	go s.accept()
	return s
}

func (s *tlsSplitter) accept() {
	defer close(s.done)
	defer func() {
		s.wg.Wait()
		s.h1.Close()
		s.h2.Close()
	}()
	for {
		nc, err := acceptRetry(s.ln, s.log)
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.pending[nc] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handshake(nc)
	}
}

func (s *tlsSplitter) handshake(nc net.Conn) {
	defer s.wg.Done()
	tc := tls.Server(nc, s.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err := tc.HandshakeContext(ctx)
	s.mu.Lock()
	delete(s.pending, nc)
	s.mu.Unlock()
	if err != nil {
		tc.Close()
		return
	}
	to := s.h1
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		to = s.h2
	}
	if !to.deliver(tc) {
		tc.Close()
	}
}

// close stops accepting and drops the connections still in their
// handshake (they carry no request yet); the sub-listeners then close.
func (s *tlsSplitter) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closing = true
	for nc := range s.pending {
		nc.Close()
	}
	s.mu.Unlock()
	<-s.done
}

// connListener is a net.Listener fed with connections by its owner.
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver hands nc to Accept; false once the listener is closed.
func (l *connListener) deliver(nc net.Conn) bool {
	select {
	case l.ch <- nc:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.ch:
		return nc, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
