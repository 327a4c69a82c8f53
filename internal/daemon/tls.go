package daemon

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves a certificate and key from files and reads them
// again when either file changes, so that a renewed certificate (by
// cert-manager, certbot or a person) is picked up without a restart. A
// pair that does not load keeps the previous one in service.
type certReloader struct {
	certFile, keyFile string
	onError           func(error)

	mu       sync.Mutex
	cert     *tls.Certificate
	modified [2]time.Time
	checked  time.Time
}

// newCertReloader loads the pair once; an error here stops the start.
func newCertReloader(certFile, keyFile string, onError func(error)) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, onError: onError}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	var mod [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		mod[i] = fi.ModTime()
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modified = &cert, mod
	return nil
}

// get is tls.Config.GetCertificate: it checks the files at most once a
// second.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if r.changed() {
			if err := r.load(); err != nil && r.onError != nil {
				r.onError(err)
			}
		}
	}
	return r.cert, nil
}

func (r *certReloader) changed() bool {
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil || !fi.ModTime().Equal(r.modified[i]) {
			return true
		}
	}
	return false
}
