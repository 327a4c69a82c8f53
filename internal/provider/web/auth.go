package web

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"aviary/internal/rollout"
)

// secrets reads credentials from the environment or files at each request,
// so that a rotated token is picked up without a restart. Errors name the
// variable or the file, never the secret.
type secrets struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

func (s secrets) value(ref, file string) (string, error) {
	if file != "" {
		b, err := s.readFile(file)
		if err != nil {
			return "", fmt.Errorf("read credentials file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	name := strings.TrimSuffix(strings.TrimPrefix(ref, "${"), "}")
	v, ok := s.lookupEnv(name)
	if !ok || v == "" {
		return "", fmt.Errorf("credentials: environment variable %s is not set", name)
	}
	return v, nil
}

// authorize sets the Authorization header that a asks for.
func (s secrets) authorize(req *http.Request, a *rollout.HTTPAuth) error {
	switch {
	case a == nil:
		return nil
	case a.BearerToken != "" || a.BearerTokenFile != "":
		tok, err := s.value(a.BearerToken, a.BearerTokenFile)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case a.BasicAuth != nil:
		pw, err := s.value(a.BasicAuth.Password, a.BasicAuth.PasswordFile)
		if err != nil {
			return err
		}
		req.SetBasicAuth(a.BasicAuth.Username, pw)
	}
	return nil
}

func defaultSecrets(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) secrets {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	return secrets{lookupEnv: lookupEnv, readFile: readFile}
}
