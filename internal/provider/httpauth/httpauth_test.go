package httpauth

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aviary/internal/rollout"
)

func TestAuthorize(t *testing.T) {
	env := map[string]string{"PROM_TOKEN": "s3cret-token", "PROM_PASSWORD": "pa55"}
	files := map[string]string{"/run/token": "file-token\n"}
	c := New(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	})
	for _, tc := range []struct {
		name    string
		auth    *rollout.HTTPAuth
		want    string // the Authorization header
		wantErr string
	}{
		{"none", nil, "", ""},
		{"bearer from env", &rollout.HTTPAuth{BearerToken: "${PROM_TOKEN}"}, "Bearer s3cret-token", ""},
		{"bearer from file, trimmed", &rollout.HTTPAuth{BearerTokenFile: "/run/token"}, "Bearer file-token", ""},
		{"basic", &rollout.HTTPAuth{BasicAuth: &rollout.BasicAuth{Username: "aviary", Password: "${PROM_PASSWORD}"}}, "Basic YXZpYXJ5OnBhNTU=", ""},
		{"unset variable", &rollout.HTTPAuth{BearerToken: "${NOPE}"}, "", "environment variable NOPE is not set"},
		{"missing file", &rollout.HTTPAuth{BearerTokenFile: "/run/none"}, "", "read credentials file: open /run/none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
			err := c.Authorize(req, tc.auth)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
				}
				for _, secret := range env {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error %q shows a secret", err)
					}
				}
				return
			}
			if err != nil || req.Header.Get("Authorization") != tc.want {
				t.Fatalf("Authorization %q (%v), want %q", req.Header.Get("Authorization"), err, tc.want)
			}
		})
	}
}

// The transport adds the header to a copy of each request, leaving the
// caller's untouched, and fails the request without sending it when a
// credential is missing.
func TestTransport(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	token := "t0ken"
	c := New(func(k string) (string, bool) { return token, token != "" }, nil)
	client := &http.Client{Transport: c.Transport(http.DefaultTransport, &rollout.HTTPAuth{BearerToken: "${TOKEN}"})}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if req.Header.Get("Authorization") != "" {
		t.Error("the transport changed the caller's request")
	}
	token = "" // unset: the request fails before it is sent
	if _, err := client.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "TOKEN is not set") {
		t.Errorf("got %v, want the unset variable named", err)
	}
	if len(got) != 1 || got[0] != "Bearer t0ken" {
		t.Errorf("the server got %q, want one request with the token", got)
	}
}
