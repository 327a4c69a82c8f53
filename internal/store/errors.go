package store

import "errors"

var (
	// ErrNotFound means the rollout (or the run) does not exist. It is
	// wrapped with the name: test with errors.Is.
	ErrNotFound = errors.New("not found")
	// ErrStaleRoute means a Commit carried a route whose generation is lower
	// than the stored one: routing must never go back. The whole Commit is
	// refused.
	ErrStaleRoute = errors.New("route generation went back")
	// ErrSchemaTooNew means the database was written by a newer aviary, whose
	// schema this one does not know. Nothing is changed.
	ErrSchemaTooNew = errors.New("database schema is newer than this aviary")
	// ErrNotAviary means the file is an SQLite database of some other program.
	ErrNotAviary = errors.New("not an aviary database")
	// ErrClosed means the DB was closed.
	ErrClosed = errors.New("store closed")
)
