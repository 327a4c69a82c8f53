// Package store keeps aviary's state in one SQLite file: every rollout's spec
// with its revision history, its status and last route, its runs, its event
// log and each run's measurement series. The standalone server reloads
// everything from it after a restart or a crash and resumes where it stopped.
//
// The controller calls rollout.Next and commits the resulting transition with
// DB.Commit before it carries out any side effect. A Commit is atomic: after
// a crash it is present entirely or not at all.
//
// # Durability
//
// The database runs in WAL mode. A Commit that returned nil is in the
// write-ahead log, so it survives a crash of the process (kill -9, a panic,
// the OOM killer) under either setting below, and recovery after a crash
// never sees part of a Commit.
//
// With the default Options (DurablePowerLoss, synchronous=FULL) the log is
// also fsynced before Commit returns: a returned Commit survives a power loss
// or a kernel panic, on storage that honours fsync. DurableCrash
// (synchronous=NORMAL) skips that fsync: a power loss may then lose the
// commits since the last checkpoint (the log is fsynced at checkpoints, every
// 1,000 pages or so), and the database stays consistent. The default is the
// safe one because a lost commit after a power cut could let a route's
// generation go back behind one a router already applied.
//
// An fsync costs about a millisecond on ordinary disks, which caps a store
// that syncs every Commit alone at about a thousand a second. So the writer
// commits in groups: Commits that arrive while one is being written are
// applied together in one SQLite transaction, each in its own savepoint, and
// share one fsync. Every Commit stays all or nothing and independent of the
// others in its group; a refused Commit leaves nothing behind. A controller
// that commits from many goroutines gets the group's throughput without
// batching by hand; one that commits from a single goroutine reaches it by
// passing several transitions to one Commit (all or nothing together).
// BenchmarkCommit measures both.
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
