//go:build !unix

package daemon

import "os"

// LockFileName is the data directory's lock: one server at a time.
const LockFileName = "lock"

// lockDataDir does not lock on this platform: run one server per data
// directory.
func lockDataDir(string) (*os.File, error) { return nil, nil }
