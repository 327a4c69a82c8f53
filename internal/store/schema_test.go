package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aviary/internal/analysis"
	"aviary/internal/rollout"
)

// raw opens the file with the driver alone, as another program would.
func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	d, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func pragma(t *testing.T, d *sql.DB, name string) int {
	t.Helper()
	var v int
	if err := d.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateFromEmptyFile(t *testing.T) {
	for _, name := range []string{"missing", "empty"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aviary.db")
			if name == "empty" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			db := open(t, path)
			mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			d := raw(t, path)
			if v := pragma(t, d, "user_version"); v != len(migrations) {
				t.Errorf("user_version: got %d, want %d", v, len(migrations))
			}
			if v := pragma(t, d, "application_id"); v != applicationID {
				t.Errorf("application_id: got %#x, want %#x", v, applicationID)
			}
			var mode string
			if err := d.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("journal_mode: got %q, %v; want wal", mode, err)
			}
		})
	}
}

// Opening a current database and reading from it writes nothing, and
// neither does any refused call.
func TestReadsDoNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviary.db")
	db := open(t, path)
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: running(1, 10, at(0)),
		Route: route(3, 10), Events: []rollout.Event{event(0, rollout.EventStarted)}})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := files(t, path)

	db = open(t, path)
	take(t, db)
	ctx := context.Background()
	refused := []error{
		db.Commit(ctx, Transition{Name: "web", At: at(1), Status: initialized(), Route: route(2, 0)}),
		db.Commit(ctx, Transition{Name: "nope", At: at(1), Status: initialized()}),
		db.Commit(ctx, Transition{Name: "web", Status: initialized()}),
		db.Delete(ctx, "nope", at(1)),
	}
	for i, err := range refused {
		if err == nil {
			t.Errorf("call %d was not refused", i)
		}
	}
	take(t, db)
	if got := files(t, path); !bytes.Equal(got[0], before[0]) || len(got[1]) != 0 {
		t.Errorf("reads and refused calls wrote: database changed %v, log has %d bytes",
			!bytes.Equal(got[0], before[0]), len(got[1]))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, path); !bytes.Equal(got[0], before[0]) {
		t.Errorf("Close after reads changed the database")
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviary.db")
	db := open(t, path)
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	db.Close()
	d := raw(t, path)
	if _, err := d.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before := files(t, path)

	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{path, "schema version 99", fmt.Sprintf("up to %d", len(migrations)), "newer aviary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := files(t, path); !bytes.Equal(got[0], before[0]) {
		t.Errorf("the refused Open changed the database")
	}
}

func TestRefuseOtherDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	d := raw(t, path)
	if _, err := d.Exec("CREATE TABLE notes (body TEXT)"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	before := files(t, path)
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrNotAviary) {
		t.Fatalf("got %v, want ErrNotAviary", err)
	}
	if got := files(t, path); !bytes.Equal(got[0], before[0]) {
		t.Errorf("the refused Open changed the database")
	}
}

// A migration that fails leaves the database at the version before it.
func TestMigrationIsAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviary.db")
	db := open(t, path)
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	db.Close()

	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(append([]string(nil), saved...),
		`CREATE TABLE half (x INTEGER); INSERT INTO no_such_table VALUES (1);`)
	n := len(saved)
	_, err := Open(context.Background(), path, Options{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("migrate schema from version %d to %d", n, n+1)) {
		t.Fatalf("got %v, want the failed migration named", err)
	}
	d := raw(t, path)
	if v := pragma(t, d, "user_version"); v != n {
		t.Errorf("user_version after a failed migration: got %d, want %d", v, n)
	}
	var half int
	if err := d.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&half); err != nil || half != 0 {
		t.Errorf("the failed migration left its table behind (%d, %v)", half, err)
	}
	d.Close()

	// Fixed, it applies, and the data survives.
	migrations[len(migrations)-1] = `CREATE TABLE half (x INTEGER);`
	db = open(t, path)
	if _, err := db.Get(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if v := pragma(t, raw(t, path), "user_version"); v != n+1 {
		t.Errorf("user_version after the migration: got %d, want %d", v, n+1)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(context.Background(), filepath.Join(dir, "missing", "aviary.db"), Options{}); err == nil {
		t.Error("Open in a missing directory: no error")
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "a.db"), Options{Durability: 7}); err == nil || !strings.Contains(err.Error(), "unknown durability 7") {
		t.Errorf("unknown durability: got %v", err)
	}
	// Names SQLite's URI syntax would misread work.
	odd := filepath.Join(dir, "a?b#c%d.db")
	db := open(t, odd)
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: initialized()})
	db.Close()
	if _, err := os.Stat(odd); err != nil {
		t.Errorf("the database is not at %s: %v", odd, err)
	}
}

// A database of schema version 1 (before shadow measurements) upgrades in
// place: its points read back unchanged, without a shadow, and new points
// keep theirs.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aviary.db")
	db := open(t, path)
	mustCommit(t, db, Transition{Name: "web", At: at(0), Manifest: spec(t, "web", "v1"), Status: running(1, 10, at(0)),
		Points: []Point{point(1, 1, "error-rate", analysis.Pass)}})
	db.Close()
	// Take it back to version 1's schema, as an older aviary left it.
	d := raw(t, path)
	if _, err := d.Exec(`ALTER TABLE points DROP COLUMN shadow; PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	d.Close()

	db = open(t, path)
	defer db.Close()
	shadowed := point(1, 2, "error-rate", analysis.Pass)
	shadowed.Shadow = &Shadow{Canary: analysis.Measurement{Value: 0.01, HasValue: true, Count: 100}, Result: analysis.Result{Metric: "error-rate", Verdict: analysis.Pass}}
	mustCommit(t, db, Transition{Name: "web", At: at(60), Status: running(1, 10, at(0)), Points: []Point{shadowed}})
	got, err := db.Series(context.Background(), "web", 1)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "series after the upgrade", got, []Point{point(1, 1, "error-rate", analysis.Pass), shadowed})
	if v := pragma(t, raw(t, path), "user_version"); v != len(migrations) {
		t.Errorf("user_version after the upgrade: got %d, want %d", v, len(migrations))
	}
}
