// Package httpauth adds the credentials of a provider's source (bearer
// token or basic auth, from the environment or a file) to its requests.
package httpauth

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"aviary/internal/rollout"
)

// Credentials reads secrets from the environment or files at each request,
// so that a rotated token is picked up without a restart. Errors name the
// variable or the file, never the secret.
type Credentials struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

// New reads the environment with lookupEnv and files with readFile (nil:
// the process's own).
func New(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) Credentials {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	return Credentials{lookupEnv: lookupEnv, readFile: readFile}
}

func (c Credentials) value(ref, file string) (string, error) {
	if file != "" {
		b, err := c.readFile(file)
		if err != nil {
			return "", fmt.Errorf("read credentials file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	name := strings.TrimSuffix(strings.TrimPrefix(ref, "${"), "}")
	v, ok := c.lookupEnv(name)
	if !ok || v == "" {
		return "", fmt.Errorf("credentials: environment variable %s is not set", name)
	}
	return v, nil
}

// Authorize sets the Authorization header that a asks for (none when a is
// nil).
func (c Credentials) Authorize(req *http.Request, a *rollout.HTTPAuth) error {
	switch {
	case a == nil:
		return nil
	case a.BearerToken != "" || a.BearerTokenFile != "":
		tok, err := c.value(a.BearerToken, a.BearerTokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case a.BasicAuth != nil:
		pw, err := c.value(a.BasicAuth.Password, a.BasicAuth.PasswordFile)
		if err != nil {
			return err
		}
		req.SetBasicAuth(a.BasicAuth.Username, pw)
	}
	return nil
}

// Transport adds a's credentials to every request sent through base.
func (c Credentials) Transport(base http.RoundTripper, a *rollout.HTTPAuth) http.RoundTripper {
	return &transport{base: base, auth: a, creds: c}
}

type transport struct {
	base  http.RoundTripper
	auth  *rollout.HTTPAuth
	creds Credentials
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.auth == nil {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if err := t.creds.Authorize(r, t.auth); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(r)
}
