package secret

import (
	"errors"
	"fmt"
)

// Errors a resolution can wrap; test with errors.Is.
var (
	// ErrNotSet: the environment variable is not set.
	ErrNotSet = errors.New("is not set")
	// ErrEmpty: the variable or file holds nothing.
	ErrEmpty = errors.New("is empty")
	// ErrPermissions: the file's mode lets others change (or, with
	// Resolver.Private, read) it.
	ErrPermissions = errors.New("has unsafe permissions")
	// ErrTooLarge: the file is larger than MaxFileSize.
	ErrTooLarge = errors.New("is too large for a secret")
)

// MaxFileSize bounds what a secret file may hold.
const MaxFileSize = 64 << 10

// Error is a failed resolution. Its text names the field and where the value
// was looked for, never the value.
type Error struct {
	// Field is the spec's field path, e.g. "spec.webhooks[0].secretFile".
	Field string
	// Source is the variable ("$HOOK_SECRET") or file path looked at.
	Source string
	Err    error
}

func (e *Error) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %s %v", e.Field, e.Source, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
