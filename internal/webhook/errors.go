package webhook

import "errors"

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("no signature")
	ErrBadSignature = errors.New("signature does not match")
	ErrBadTimestamp = errors.New("bad timestamp")
	ErrStale        = errors.New("timestamp too far from now")
)
