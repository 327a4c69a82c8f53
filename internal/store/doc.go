// Package store keeps aviary's state in one SQLite file: every rollout's spec
// with its revision history, its status and last route, its runs, its event
// log and each run's measurement series. The standalone server reloads
// everything from it after a restart or a crash and resumes where it stopped.
//
// The controller calls rollout.Next and commits the resulting transition with
// DB.Commit before it carries out any side effect. A Commit is one SQLite
// transaction: after a crash it is present entirely or not at all.
//
// # Durability
//
// The database runs in WAL mode. With the default Options (synchronous=FULL)
// a Commit that returned nil has been written to the write-ahead log and
// fsynced: it survives a process crash (kill -9) and a power loss or kernel
// panic. Options.Durability = DurableCrash selects synchronous=NORMAL, which
// skips that fsync: a returned Commit survives a process crash (the write is
// in the operating system's page cache), but a power loss may lose the last
// commits before the next checkpoint; the file stays consistent either way.
//
// One fsync costs about a millisecond on ordinary disks, which would cap a
// store that synced every transaction at about a thousand commits a second.
// So the store commits in groups: Commits that arrive while one is being
// written are applied together in one SQLite transaction, each in its own
// savepoint, and share one fsync. Every Commit stays all or nothing and
// independent of the others in its group; a refused Commit leaves nothing
// behind. A controller that commits from many goroutines gets the group's
// throughput without batching by hand; one that commits from a single
// goroutine can pass several transitions to one Commit (all or nothing
// together).
//
// # Reading
//
// Reads run on a separate pool of connections opened with query_only, so a
// read path can never write to the database, and they read a consistent
// snapshot that a concurrent Commit does not block. Event IDs grow in commit
// order: a reader that pages with EventQuery.AfterID never misses an event
// committed after its last page.
//
// # Imports
//
// The package may import the standard library, the core (aviary/internal/rollout
// and aviary/internal/analysis) and the SQLite driver (modernc.org/sqlite, pure
// Go, no cgo). It never reads the clock: every time comes in with the data.
package store
