package store

import (
	"context"
	"database/sql"
	"fmt"
)

// applicationID marks the file as aviary's ("avry"), so that Open refuses a
// database of another program instead of writing into it.
const applicationID = 0x61767279

// migrations are the schema's history, oldest first. Migration i brings the
// schema from version i to i+1 (PRAGMA user_version); each runs in its own
// transaction together with the version bump. Never edit a released
// migration: append a new one.
//
// Times are INTEGER nanoseconds since the Unix epoch (NULL for the zero
// time). Structured values are JSON text; what is queried has its own column.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE rollouts (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	revision   INTEGER NOT NULL,          -- latest spec revision
	phase      TEXT    NOT NULL,          -- status.phase
	run        INTEGER NOT NULL,          -- status.run
	generation INTEGER NOT NULL,          -- route.generation, 0 without a route
	status     TEXT    NOT NULL,          -- JSON rollout.Status
	route      TEXT,                      -- JSON rollout.Route, NULL before the first
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	deleted_at INTEGER                    -- set by Delete; the row keeps the history's name
) STRICT;
CREATE UNIQUE INDEX rollouts_name ON rollouts (name) WHERE deleted_at IS NULL;

CREATE TABLE revisions (
	rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	revision   INTEGER NOT NULL,
	manifest   TEXT    NOT NULL,          -- JSON rollout.Manifest
	applied_at INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, revision)
) STRICT, WITHOUT ROWID;

CREATE TABLE runs (
	rollout_id     INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	run            INTEGER NOT NULL,
	version        TEXT    NOT NULL,
	stable_version TEXT    NOT NULL,
	started_at     INTEGER,
	ended_at       INTEGER,               -- NULL while the run goes on
	outcome        TEXT    NOT NULL DEFAULT '',
	reason         TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (rollout_id, run)
) STRICT, WITHOUT ROWID;

CREATE TABLE events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: readers page by it
	rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	time       INTEGER,
	run        INTEGER NOT NULL,
	type       TEXT    NOT NULL,
	severity   TEXT    NOT NULL,
	phase      TEXT    NOT NULL,
	weight     INTEGER NOT NULL,
	step       INTEGER NOT NULL,
	reason     TEXT    NOT NULL
) STRICT;
CREATE INDEX events_rollout ON events (rollout_id, id);

CREATE TABLE points (
	rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
	run        INTEGER NOT NULL,
	interval   INTEGER NOT NULL,
	metric     TEXT    NOT NULL,
	at         INTEGER,
	verdict    TEXT    NOT NULL,          -- result.verdict, for queries
	canary     TEXT    NOT NULL,          -- JSON analysis.Measurement
	stable     TEXT    NOT NULL,          -- JSON analysis.Measurement
	result     TEXT    NOT NULL,          -- JSON analysis.Result
	PRIMARY KEY (rollout_id, run, interval, metric)
) STRICT, WITHOUT ROWID;
`,
	// 2: the canary's shadow (mirrored) measurement and its verdict, when
	// the rollout mirrors traffic.
	`
ALTER TABLE points ADD COLUMN shadow TEXT; -- JSON store.Shadow, NULL without mirroring
`,
}

// check returns the schema version of the database on conn, refusing a
// schema newer than this aviary knows or a database of another program. It
// only reads.
func check(ctx context.Context, conn *sql.Conn, path string) (int, error) {
	var version, appID, objects int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("%s: read schema version: %w", path, err)
	}
	if err := conn.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return 0, fmt.Errorf("%s: read application id: %w", path, err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&objects); err != nil {
		return 0, fmt.Errorf("%s: read schema: %w", path, err)
	}
	switch {
	case appID != 0 && appID != applicationID, appID == 0 && objects > 0:
		return 0, fmt.Errorf("%s: %w (application id %#x, %d schema objects)", path, ErrNotAviary, appID, objects)
	case version > len(migrations):
		return 0, fmt.Errorf("%w: %s has schema version %d, this aviary knows versions up to %d; use a newer aviary or another data directory",
			ErrSchemaTooNew, path, version, len(migrations))
	}
	return version, nil
}

// migrate brings the database on conn from version to the latest schema,
// one migration per transaction.
func migrate(ctx context.Context, conn *sql.Conn, path string, version int) error {
	for v := version; v < len(migrations); v++ {
		if err := migrateOne(ctx, conn, v); err != nil {
			return fmt.Errorf("%s: migrate schema from version %d to %d: %w", path, v, v+1, err)
		}
	}
	return nil
}

func migrateOne(ctx context.Context, conn *sql.Conn, from int) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, migrations[from]); err != nil {
		return err
	}
	// Both pragmas write the file header, inside the transaction.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = %d`, applicationID, from+1)); err != nil {
		return err
	}
	return tx.Commit()
}
