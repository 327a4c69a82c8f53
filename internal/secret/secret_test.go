package secret

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aviary/internal/deptest"
)

func TestImports(t *testing.T) {
	deptest.Check(t, ".", deptest.Rules{})
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValue(t *testing.T) {
	const val = "s3cr3t-value-0123456789"
	r := &Resolver{LookupEnv: env(map[string]string{"HOOK_SECRET": val, "EMPTY": ""}), Redactor: NewRedactor()}
	tests := []struct {
		setting string
		want    string
		wantErr error
		errText string
	}{
		{"${HOOK_SECRET}", val, nil, ""},
		{"https://hooks.example.com/T1/B2/XYZ", "https://hooks.example.com/T1/B2/XYZ", nil, ""},
		{"${MISSING}", "", ErrNotSet, "spec.webhooks[0].secret: environment variable MISSING is not set"},
		{"${EMPTY}", "", ErrEmpty, "spec.webhooks[0].secret: environment variable EMPTY is empty"},
		{"", "", ErrEmpty, "spec.webhooks[0].secret: is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			got, err := r.Value("spec.webhooks[0].secret", tt.setting)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil && err.Error() != tt.errText {
				t.Errorf("got error %q, want %q", err, tt.errText)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := r.Redactor.String("key " + val + " url https://hooks.example.com/T1/B2/XYZ"); got != "key [redacted] url [redacted]" {
		t.Errorf("resolved values are not redacted: got %q", got)
	}
}

func TestFile(t *testing.T) {
	const val = "file-secret-0123456789"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		private bool
		want    string
		wantErr error
	}{
		{"newline trimmed", val + "\n", 0o600, false, val, nil},
		{"crlf trimmed", val + "\r\n", 0o600, false, val, nil},
		{"one newline only", val + "\n\n", 0o600, false, val + "\n", nil},
		{"no newline", val, 0o400, false, val, nil},
		{"world readable accepted", val, 0o644, false, val, nil},
		{"world readable refused when private", val, 0o644, true, "", ErrPermissions},
		{"group writable refused", val, 0o660, false, "", ErrPermissions},
		{"world writable refused", val, 0o602, false, "", ErrPermissions},
		{"empty", "\n", 0o600, false, "", ErrEmpty},
		{"too large", strings.Repeat("x", MaxFileSize+1), 0o600, false, "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.content, tt.mode)
			r := &Resolver{Private: tt.private}
			got, err := r.File("spec.notify[0].urlFile", p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err != nil {
				msg := err.Error()
				if !strings.HasPrefix(msg, "spec.notify[0].urlFile: file "+p) {
					t.Errorf("error %q does not name the field and the file", msg)
				}
				if strings.Contains(msg, "file-secret") || strings.Contains(msg, "xxxxxxxx") {
					t.Errorf("error %q shows the file's content", msg)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := (&Resolver{}).File("spec.webhooks[1].secretFile", "/nonexistent/secret")
		want := "spec.webhooks[1].secretFile: file /nonexistent/secret no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := (&Resolver{}).File("f", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("got %v, want a refusal of a directory", err)
		}
	})
	t.Run("symlink followed", func(t *testing.T) {
		p := writeFile(t, val, 0o644)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(p, link); err != nil {
			t.Fatal(err)
		}
		got, err := (&Resolver{}).File("f", link)
		if err != nil || got != val {
			t.Errorf("got %q, %v; want %q", got, err, val)
		}
	})
}

func TestEither(t *testing.T) {
	r := &Resolver{LookupEnv: env(map[string]string{"X": "value-of-x"})}
	if v, err := r.Either("a.secret", "", "a.secretFile", ""); v != "" || err != nil {
		t.Errorf("neither set: got %q, %v; want empty, nil", v, err)
	}
	if v, err := r.Either("a.secret", "${X}", "a.secretFile", ""); v != "value-of-x" || err != nil {
		t.Errorf("got %q, %v", v, err)
	}
	_, err := r.Either("a.secret", "${X}", "a.secretFile", "/f")
	if err == nil || err.Error() != "a.secretFile: give secret or secretFile, not both" {
		t.Errorf("got %v", err)
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor()
	url := "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX?token=abc&x=1"
	r.Add(url, "hmac-key-123", "")
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"Post " + url + ": refused", "Post [redacted]: refused"},
		{`Post "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX?token=abc&x=1"`, `Post "[redacted]"`},
		{"path /services/T000/B000/XXXXsecretXXXX?token=abc&x=1 leaked", "path [redacted] leaked"},
		{"escaped " + `https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX?token=abc\u0026x=1`, "escaped [redacted]"},
		{"key=hmac-key-123.", "key=[redacted]."},
		{"query-escaped " + "https%3A%2F%2Fhooks.slack.com%2Fservices%2FT000%2FB000%2FXXXXsecretXXXX%3Ftoken%3Dabc%26x%3D1", "query-escaped [redacted]"},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var nilR *Redactor
	if got := nilR.String("x"); got != "x" {
		t.Errorf("nil redactor: got %q", got)
	}
	base := errors.New("dial " + url)
	err := r.Error(fmt.Errorf("wrapped: %w", base))
	if strings.Contains(err.Error(), "secret") || !errors.Is(err, base) {
		t.Errorf("Error: got %q (is base: %v), want redacted text and the chain kept", err, errors.Is(err, base))
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestHandler(t *testing.T) {
	r := NewRedactor()
	const key = "super-secret-key-42"
	r.Add(key)
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewTextHandler(&buf, nil)))
	log = log.With("bound", "has "+key)
	log.WithGroup("g").Info("message with "+key,
		"s", key, "err", errors.New("failed: "+key), "str", stringer{key},
		"grp", slog.GroupValue(slog.String("inner", key)), "any", map[string]string{"k": key}, "n", 3)
	out := buf.String()
	if strings.Contains(out, key) {
		t.Fatalf("log shows the secret:\n%s", out)
	}
	if strings.Count(out, Redacted) != 7 || !strings.Contains(out, "g.n=3") {
		t.Errorf("got %q, want 7 redactions and other values kept", out)
	}
}
