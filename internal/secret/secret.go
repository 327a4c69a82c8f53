package secret

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

var refRE = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// IsRef reports whether s is an environment variable reference "${NAME}".
func IsRef(s string) bool { return refRE.MatchString(s) }

// Resolver resolves references to secrets. The zero value reads the process
// environment and redacts nothing; it is safe for concurrent use if its
// Redactor is (the package's is).
type Resolver struct {
	// LookupEnv reads environment variables; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Private refuses secret files that the group or others may read.
	Private bool
	// Redactor learns every value the resolver returns; nil: none does.
	Redactor *Redactor
}

// Value resolves field's setting: an environment variable reference
// "${NAME}" yields the variable's value; anything else is taken literally
// (a notification URL written in the spec). Either way the value is a
// secret and the Redactor learns it.
func (r *Resolver) Value(field, setting string) (string, error) {
	if setting == "" {
		return "", &Error{Field: field, Err: ErrEmpty}
	}
	m := refRE.FindStringSubmatch(setting)
	if m == nil {
		r.learn(setting)
		return setting, nil
	}
	lookup := r.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(m[1])
	switch {
	case !ok:
		return "", &Error{Field: field, Source: "environment variable " + m[1], Err: ErrNotSet}
	case v == "":
		return "", &Error{Field: field, Source: "environment variable " + m[1], Err: ErrEmpty}
	}
	r.learn(v)
	return v, nil
}

// File reads a secret from the file at path for field (e.g.
// "spec.notify[0].urlFile"), removing one trailing newline.
func (r *Resolver) File(field, path string) (string, error) {
	fail := func(err error) (string, error) {
		return "", &Error{Field: field, Source: "file " + path, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(cause(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(cause(err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("is not a regular file"))
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return fail(fmt.Errorf("%w: mode %04o lets others change it (chmod go-w)", ErrPermissions, perm))
	}
	if r.Private && perm&0o044 != 0 {
		return fail(fmt.Errorf("%w: mode %04o lets others read it (chmod go-rw)", ErrPermissions, perm))
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fail(cause(err))
	}
	if len(b) > MaxFileSize {
		return fail(fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxFileSize))
	}
	v := strings.TrimSuffix(string(b), "\n")
	v = strings.TrimSuffix(v, "\r")
	if v == "" {
		return fail(ErrEmpty)
	}
	r.learn(v)
	return v, nil
}

// Either resolves a setting given inline (field) or as a file (fileField);
// at most one is set. It returns "" and no error when neither is.
func (r *Resolver) Either(field, setting, fileField, file string) (string, error) {
	switch {
	case setting != "" && file != "":
		return "", &Error{Field: fileField, Err: fmt.Errorf("give %s or %s, not both", last(field), last(fileField))}
	case file != "":
		return r.File(fileField, file)
	case setting != "":
		return r.Value(field, setting)
	}
	return "", nil
}

func (r *Resolver) learn(v string) {
	if r.Redactor != nil {
		r.Redactor.Add(v)
	}
}

// cause strips the path from an *os.PathError: the Error names the file.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func last(path string) string { return path[strings.LastIndex(path, ".")+1:] }
