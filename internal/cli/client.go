package cli

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"aviary/internal/server"
	"github.com/spf13/cobra"
)

// DefaultServer is where client commands look for the server.
const DefaultServer = "http://127.0.0.1:7070"

// clientFlags are the flags every command that talks to the server takes.
type clientFlags struct {
	server    string
	tokenFile string
	caFile    string
}

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "the server's address (default $AVIARY_SERVER or "+DefaultServer+")")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "a file holding the API token (default: $AVIARY_TOKEN)")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "a PEM file of CA certificates to trust for an https server, besides the system's (default: $AVIARY_CA_FILE)")
}

// client calls the server's API.
type client struct {
	base  *url.URL
	token string
	user  string
	http  *http.Client
}

// newClient finds the server and the token: flags first, then the
// environment, then the defaults.
func (f *clientFlags) client(sys *system) (*client, error) {
	addr := f.server
	if addr == "" {
		addr = sys.getenv("AVIARY_SERVER")
	}
	if addr == "" {
		addr = DefaultServer
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("server address %q is not an http:// or https:// URL (set --server or AVIARY_SERVER)", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	token := sys.getenv("AVIARY_TOKEN")
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read the API token: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("the token file %s is empty", f.tokenFile)
		}
	}
	user := sys.getenv("AVIARY_USER")
	if user == "" {
		user = sys.getenv("USER")
	}
	hc := sys.http
	if ca := cmp.Or(f.caFile, sys.getenv("AVIARY_CA_FILE")); ca != "" {
		if hc, err = withCA(hc, ca); err != nil {
			return nil, err
		}
	}
	return &client{base: u, token: token, user: user, http: hc}, nil
}

// url is the address of an API path.
func (c *client) url(path string) string {
	return c.base.String() + path
}

// apiError is an error answer of the server.
type apiError struct {
	status int
	body   server.ErrorBody
	// hint says what to do about it, when the client knows.
	hint string
}

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(e.body.Error)
	if len(e.body.Fields) > 1 || (len(e.body.Fields) == 1 && !strings.Contains(e.body.Error, e.body.Fields[0].Message)) {
		b.WriteString(":")
		for _, f := range e.body.Fields {
			b.WriteString("\n  " + f.Error())
		}
	}
	if e.hint != "" {
		b.WriteString("\n" + e.hint)
	}
	return b.String()
}

// connError is a server that cannot be reached.
type connError struct {
	addr string
	err  error
}

func (e *connError) Error() string {
	hint := "start one with `aviary server`, or point elsewhere with --server URL or AVIARY_SERVER"
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(e.err, &unknown):
		hint = "the server's certificate is not signed by a CA this machine trusts: trust its CA with --ca-file FILE or AVIARY_CA_FILE"
	case errors.As(e.err, &invalid), errors.As(e.err, &host):
		hint = "the server's certificate does not fit (expired, or for another name): check --server and the server's --tls-cert"
	}
	return fmt.Sprintf("cannot reach the aviary server at %s: %v\n%s", e.addr, e.err, hint)
}

func (e *connError) Unwrap() error { return e.err }

// do calls the API: body (if not nil) is sent as JSON unless it is []byte,
// and a 2xx answer is decoded into out (if not nil).
func (c *client) do(ctx context.Context, method, path string, body any, contentType string, out any) error {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), r)
	if err != nil {
		return err
	}
	c.authorize(req)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("read the answer of %s %s: %w", method, c.url(path), err)
	}
	if res.StatusCode/100 != 2 {
		return c.errorOf(res, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the server's answer to %s %s is not what aviary %s expects: %w", method, path, Version, err)
	}
	return nil
}

func (c *client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.user != "" {
		req.Header.Set("X-Aviary-User", c.user)
	}
	req.Header.Set("Accept", "application/json")
}

func (c *client) connError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &connError{addr: c.base.String(), err: err}
}

// errorOf reads an error answer; one that is not the API's JSON (a proxy
// in the way, another program on the port) is reported as it came.
func (c *client) errorOf(res *http.Response, data []byte) error {
	e := &apiError{status: res.StatusCode}
	if err := json.Unmarshal(data, &e.body); err != nil || e.body.Error == "" {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		if c.base.Scheme == "http" && strings.Contains(text, "HTTP request to an HTTPS server") {
			return fmt.Errorf("%s serves HTTPS: use --server https://%s (or AVIARY_SERVER)", c.base, c.base.Host)
		}
		return fmt.Errorf("%s answered %s %s: %s (is this an aviary server?)", c.base, res.Status, res.Request.URL.Path, text)
	}
	if res.StatusCode == http.StatusUnauthorized {
		if c.token == "" {
			e.hint = "set AVIARY_TOKEN or pass --token-file FILE (the server writes its token to the token file in its data directory)"
		} else {
			e.hint = "check AVIARY_TOKEN or --token-file: the server did not accept this token"
		}
	}
	return e
}

// get reads an API path into out.
func (c *client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", out)
}

// post sends body as JSON and reads the answer into out.
func (c *client) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, body, "", out)
}

// rolloutPath is the API path of a rollout (and a sub-resource).
func rolloutPath(name string, rest ...string) string {
	p := "/api/v1/rollouts/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// defaultHTTP is the client of real commands: bounded connecting and
// waiting for an answer's headers, no bound on reading a body (streams last
// as long as the run; their context ends them).
func defaultHTTP() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
	}}
}
