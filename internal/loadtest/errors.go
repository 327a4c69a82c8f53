package loadtest

import "errors"

// ErrNotAllowed: a run tried to reach an address outside its target.
var ErrNotAllowed = errors.New("not one of the load target's addresses")
