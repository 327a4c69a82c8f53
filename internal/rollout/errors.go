package rollout

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem with a spec, located by its field path
// ("spec.analysis.metrics[1].max") and, when it came from a file, its line.
type FieldError struct {
	Path    string `json:"field"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d): %s", e.Path, e.Line, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Message)
}

// FieldErrors is every problem found in a spec, in field order.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when there are no problems.
func (es FieldErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Errors of operations refused by Allowed.
var (
	// ErrNoRun means the operation needs a run in progress.
	ErrNoRun = errors.New("no run in progress")
	// ErrRefused is wrapped by every refusal; callers map it to a 409.
	ErrRefused = errors.New("operation refused")
)

// refusal is an operation refused in the rollout's current state.
type refusal struct {
	op  string
	msg string
	err error
}

func (r refusal) Error() string { return r.op + ": " + r.msg }
func (r refusal) Is(target error) bool {
	return target == ErrRefused || (r.err != nil && target == r.err)
}
