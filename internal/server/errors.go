package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"aviary/internal/controller"
	"aviary/internal/rollout"
	"aviary/internal/store"
)

// ErrorBody is the JSON body of every error answer. Fields lists the
// offending fields of a spec (empty when the problem is not one of fields).
type ErrorBody struct {
	Error  string               `json:"error"`
	Fields []rollout.FieldError `json:"fields"`
}

// Errors the handlers return; statusOf maps them (and the controller's) to
// HTTP statuses.
var (
	errUnauthorized = errors.New("unauthorized")
	errNotFound     = errors.New("not found")
	errBadRequest   = errors.New("bad request")
	errMethod       = errors.New("method not allowed")
	errNoMetrics    = errors.New("this server exports no metrics")
)

// apiError is an error with the sentinel that decides its status and a
// message for the caller.
type apiError struct {
	kind error
	msg  string
}

func (e apiError) Error() string { return e.msg }
func (e apiError) Unwrap() error { return e.kind }

func badRequest(format string, args ...any) error {
	return apiError{errBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return apiError{errNotFound, fmt.Sprintf(format, args...)}
}

// invalidError is a request with problems in its fields; msg, when set,
// replaces the summary built from what.
type invalidError struct {
	msg    string
	what   string
	fields rollout.FieldErrors
}

func (e invalidError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	if len(e.fields) == 1 {
		return fmt.Sprintf("%s is invalid: %s", e.what, e.fields[0].Error())
	}
	return fmt.Sprintf("%s is invalid (%d problems)", e.what, len(e.fields))
}
func (e invalidError) Unwrap() error { return e.fields }

// unsupportedError is a valid spec that asks for an adapter (router,
// provider) this server does not have.
type unsupportedError struct {
	err   error
	field rollout.FieldError
}

func (e unsupportedError) Error() string { return e.err.Error() }
func (e unsupportedError) Unwrap() error { return e.err }

// statusOf maps an error to its HTTP status. It is the only place where
// errors become statuses.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errBadRequest), isFieldErrors(err):
		return http.StatusBadRequest
	case errors.Is(err, errNotFound), errors.Is(err, controller.ErrNotFound), errors.Is(err, store.ErrNotFound),
		errors.Is(err, errNoMetrics):
		return http.StatusNotFound
	case errors.Is(err, rollout.ErrRefused):
		return http.StatusConflict
	case errors.Is(err, controller.ErrUnsupported):
		return http.StatusUnprocessableEntity
	case errors.Is(err, controller.ErrNotRunning):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func isFieldErrors(err error) bool {
	var fe rollout.FieldErrors
	return errors.As(err, &fe)
}

// writeError answers with err as an ErrorBody. Internal errors are logged
// and not shown: their text may hold details of the host.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	body := ErrorBody{Error: err.Error(), Fields: []rollout.FieldError{}}
	var fe rollout.FieldErrors
	var ue unsupportedError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		body.Error = fmt.Sprintf("the request body is larger than the limit of %d bytes", tooLarge.Limit)
	case status == http.StatusServiceUnavailable:
		body.Error = "the controller is not running (the server is starting or stopping): try again shortly"
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &ue):
		body.Fields = append(body.Fields, ue.field)
	case errors.As(err, &fe):
		body.Fields = append(body.Fields, fe...)
	case status == http.StatusInternalServerError:
		if !errors.Is(err, context.Canceled) {
			s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.String("err", err.Error()))
		}
		body.Error = "internal server error (see the server's log)"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aviary"`)
	}
	writeJSON(w, status, body)
}

// fieldOf turns an error whose text starts with a field path
// ("spec.traffic.router: router \"x\" is unsupported") into a FieldError.
func fieldOf(err error, lines func(string) int) rollout.FieldError {
	msg := err.Error()
	path, rest, ok := strings.Cut(msg, ": ")
	if !ok || !strings.HasPrefix(path, "spec.") {
		return rollout.FieldError{Path: "spec", Message: msg}
	}
	return rollout.FieldError{Path: path, Line: lines(path), Message: rest}
}
