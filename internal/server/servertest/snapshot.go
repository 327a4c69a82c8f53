package servertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"aviary/internal/store"
)

// Snapshot is the state of the test server's SQLite store: the SHA-256 of
// its files and, to explain a difference, everything its read methods
// return.
//
// The hash covers the database file and its write-ahead log, the files that
// hold data. It leaves out the -shm file: that is SQLite's shared-memory
// index of the log, which readers update (read marks) without writing any
// data. Only a write or a checkpoint changes the two files hashed; the
// store checkpoints only after commits, and its reads run on query_only
// connections.
type Snapshot struct {
	Files map[string]string `json:"files"`
	Dump  string            `json:"-"`
}

// Equal reports whether two snapshots have the same files.
func (s Snapshot) Equal(o Snapshot) bool {
	if len(s.Files) != len(o.Files) {
		return false
	}
	for k, v := range s.Files {
		if o.Files[k] != v {
			return false
		}
	}
	return true
}

// Snapshot hashes the store's files and dumps its content.
func (e *Env) Snapshot(t testing.TB) Snapshot {
	t.Helper()
	s := Snapshot{Files: map[string]string{}}
	for _, name := range []string{e.DBPath, e.DBPath + "-wal"} {
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		s.Files[name] = fmt.Sprintf("%d bytes, sha256 %s", len(b), hex.EncodeToString(sum[:]))
	}
	s.Dump = dump(t, e.Store)
	return s
}

// dump reads everything the store holds, through its read methods.
func dump(t testing.TB, db *store.DB) string {
	t.Helper()
	ctx := context.Background()
	recs, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type history struct {
		Record    store.Record
		Revisions []store.Revision
		Runs      []store.Run
		Points    [][]store.Point
	}
	var all []history
	for _, r := range recs {
		h := history{Record: r}
		if h.Revisions, err = db.Revisions(ctx, r.Name); err != nil {
			t.Fatal(err)
		}
		if h.Runs, err = db.Runs(ctx, r.Name); err != nil {
			t.Fatal(err)
		}
		for run := 1; run <= r.Status.Run; run++ {
			ps, err := db.Series(ctx, r.Name, run)
			if err != nil {
				t.Fatal(err)
			}
			h.Points = append(h.Points, ps)
		}
		all = append(all, h)
	}
	events, err := db.Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(map[string]any{"rollouts": all, "events": events}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
