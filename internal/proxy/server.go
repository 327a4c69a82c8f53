package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ListenConfig says where the proxy accepts traffic.
type ListenConfig struct {
	// Addr is host:port; port 0 picks a free port (see Addr).
	Addr string
	// CertFile and KeyFile, when both set, terminate TLS (HTTP/2 and
	// HTTP/1.1 by ALPN).
	CertFile string
	KeyFile  string
}

// clientConn is per-connection state of an HTTP/1 client connection, where
// requests come one at a time.
type clientConn struct {
	// writeDeadline is the write deadline in force (zero: none).
	writeDeadline time.Time
}

type clientConnKey struct{}

// server is one listener and the HTTP servers on it: the proxy's own for
// plain HTTP/1.x, net/http's for h2c (or for everything, with
// NetHTTPServer), and on TLS listeners both, split by ALPN.
type server struct {
	cfg   ListenConfig
	ln    net.Listener
	h1    *h1Server
	hs    *http.Server
	split *tlsSplitter
	done  chan struct{} // hs stopped serving
}

// Listen starts accepting on cfg.Addr. When the proxy already listens with
// another configuration, the new listener starts first and the old one then
// drains within ctx; with the same configuration Listen does nothing.
func (p *Proxy) Listen(ctx context.Context, cfg ListenConfig) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("proxy %q: closed", p.opts.Name)
	}
	old := p.srv
	if old != nil && old.cfg == cfg {
		p.mu.Unlock()
		return nil
	}
	s, err := p.newServer(cfg)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.srv = s
	p.mu.Unlock()
	p.log.Info("listening", "addr", s.ln.Addr().String(), "tls", cfg.CertFile != "", "h2c", p.opts.H2C)
	if old != nil {
		return old.shutdown(ctx)
	}
	return nil
}

// Addr is the address the proxy listens on, or nil.
func (p *Proxy) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil
	}
	return p.srv.ln.Addr()
}

func (p *Proxy) newServer(cfg ListenConfig) (*server, error) {
	if cfg.Addr == "" {
		return nil, fmt.Errorf("proxy %q: listen: no address", p.opts.Name)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("proxy %q: listen %s: TLS needs both a certificate file and a key file", p.opts.Name, cfg.Addr)
	}
	if cfg.CertFile == "" && !p.opts.H2C && !p.opts.NetHTTPServer {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: listen: %w", p.opts.Name, err)
		}
		return &server{cfg: cfg, ln: ln, h1: newH1Server(p, ln)}, nil
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(p.opts.H2C)
	hs := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: p.opts.ReadHeaderTimeout,
		IdleTimeout:       p.opts.IdleTimeout,
		MaxHeaderBytes:    p.opts.MaxHeaderBytes,
		Protocols:         &protocols,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, clientConnKey{}, &clientConn{})
		},
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: listen %s: load TLS certificate %s: %w", p.opts.Name, cfg.Addr, cfg.CertFile, err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"}}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("proxy %q: listen: %w", p.opts.Name, err)
	}
	s := &server{cfg: cfg, hs: hs, ln: ln, done: make(chan struct{})}
	serve := func() error { return hs.Serve(ln) }
	switch {
	case hs.TLSConfig != nil && !p.opts.NetHTTPServer:
		// HTTP/1.1 connections go to the proxy's own server, HTTP/2 ones
		// (already handshaken) to net/http's.
		s.split = newTLSSplitter(ln, hs.TLSConfig, p.opts.ReadHeaderTimeout, p.log)
		s.h1 = newH1Server(p, s.split.h1)
		serve = func() error { return hs.Serve(s.split.h2) }
	case hs.TLSConfig != nil:
		serve = func() error { return hs.ServeTLS(ln, "", "") }
	}
	go func() {
		defer close(s.done)
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error("serving stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return s, nil
}

// shutdown stops accepting, waits for requests in flight until ctx is done,
// then closes the remaining connections.
func (s *server) shutdown(ctx context.Context) error {
	if s.split != nil {
		s.split.close()
	}
	var errs []error
	if s.h1 != nil {
		errs = append(errs, s.h1.shutdown(ctx))
	}
	if s.hs != nil {
		if err := s.hs.Shutdown(ctx); err != nil {
			s.hs.Close()
			errs = append(errs, fmt.Errorf("draining %s: %w", s.ln.Addr(), err))
		}
		<-s.done
	}
	return errors.Join(errs...)
}
