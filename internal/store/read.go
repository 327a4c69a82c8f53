package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"aviary/internal/rollout"
)

// The read methods are safe for concurrent use with each other and with
// Commit and Delete. Each reads one consistent snapshot (in a read
// transaction when it needs more than one query), never waits for a write and
// never writes: the read connections are opened with query_only. A rollout
// that does not exist (or was deleted) wraps ErrNotFound; after Close they
// return ErrClosed.

const recordQuery = `SELECT r.name, r.revision, v.manifest, r.status, r.route, r.created_at, r.updated_at
	FROM rollouts r JOIN revisions v ON v.rollout_id = r.id AND v.revision = r.revision
	WHERE r.deleted_at IS NULL`

// Load returns every rollout, ordered by name.
func (db *DB) Load(ctx context.Context) ([]Record, error) {
	if db.isClosed() {
		return nil, ErrClosed
	}
	rows, err := db.r.QueryContext(ctx, recordQuery+` ORDER BY r.name`)
	if err != nil {
		return nil, fmt.Errorf("load rollouts: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("load rollouts: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load rollouts: %w", err)
	}
	return out, nil
}

// Get returns the named rollout.
func (db *DB) Get(ctx context.Context, name string) (Record, error) {
	if db.isClosed() {
		return Record{}, ErrClosed
	}
	rec, err := scanRecord(db.r.QueryRowContext(ctx, recordQuery+` AND r.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("get rollout %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get rollout %q: %w", name, err)
	}
	return rec, nil
}

func scanRecord(row interface{ Scan(...any) error }) (Record, error) {
	var rec Record
	var manifest, status string
	var route sql.NullString
	var created, updated sql.NullInt64
	if err := row.Scan(&rec.Name, &rec.Revision, &manifest, &status, &route, &created, &updated); err != nil {
		return Record{}, err
	}
	if err := json.Unmarshal([]byte(manifest), &rec.Manifest); err != nil {
		return Record{}, fmt.Errorf("decode manifest of %q: %w", rec.Name, err)
	}
	if err := json.Unmarshal([]byte(status), &rec.Status); err != nil {
		return Record{}, fmt.Errorf("decode status of %q: %w", rec.Name, err)
	}
	if route.Valid {
		rec.Route = new(rollout.Route)
		if err := json.Unmarshal([]byte(route.String), rec.Route); err != nil {
			return Record{}, fmt.Errorf("decode route of %q: %w", rec.Name, err)
		}
	}
	rec.CreatedAt, rec.UpdatedAt = timeOf(created), timeOf(updated)
	return rec, nil
}

// Revisions returns the named rollout's spec revisions, oldest first.
func (db *DB) Revisions(ctx context.Context, name string) ([]Revision, error) {
	var out []Revision
	err := db.read(ctx, name, func(tx *sql.Tx, id int64) error {
		rows, err := tx.QueryContext(ctx, `SELECT revision, manifest, applied_at FROM revisions
			WHERE rollout_id = ? ORDER BY revision`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r Revision
			var manifest string
			var at sql.NullInt64
			if err := rows.Scan(&r.Revision, &manifest, &at); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(manifest), &r.Manifest); err != nil {
				return fmt.Errorf("decode revision %d: %w", r.Revision, err)
			}
			r.AppliedAt = timeOf(at)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("revisions of %q: %w", name, err)
	}
	return out, nil
}

// Runs returns the named rollout's runs, newest first.
func (db *DB) Runs(ctx context.Context, name string) ([]Run, error) {
	var out []Run
	err := db.read(ctx, name, func(tx *sql.Tx, id int64) error {
		rows, err := tx.QueryContext(ctx, `SELECT run, version, stable_version, started_at, ended_at, outcome, reason
			FROM runs WHERE rollout_id = ? ORDER BY run DESC`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r Run
			var started, ended sql.NullInt64
			var outcome string
			if err := rows.Scan(&r.Run, &r.Version, &r.StableVersion, &started, &ended, &outcome, &r.Reason); err != nil {
				return err
			}
			r.StartedAt, r.Outcome = timeOf(started), rollout.Phase(outcome)
			if ended.Valid {
				t := timeOf(ended)
				r.EndedAt = &t
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("runs of %q: %w", name, err)
	}
	return out, nil
}

// Series returns the measurement series of the named rollout's run, ordered
// by interval, then metric. A run without points has an empty series.
func (db *DB) Series(ctx context.Context, name string, run int) ([]Point, error) {
	var out []Point
	err := db.read(ctx, name, func(tx *sql.Tx, id int64) error {
		rows, err := tx.QueryContext(ctx, `SELECT interval, metric, at, canary, stable, result, shadow
			FROM points WHERE rollout_id = ? AND run = ? ORDER BY interval, metric`, id, run)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p := Point{Run: run}
			var at sql.NullInt64
			var canary, stable, result string
			var shadow sql.NullString
			if err := rows.Scan(&p.Interval, &p.Metric, &at, &canary, &stable, &result, &shadow); err != nil {
				return err
			}
			p.At = timeOf(at)
			var shadowErr error
			if shadow.Valid {
				p.Shadow = new(Shadow)
				shadowErr = json.Unmarshal([]byte(shadow.String), p.Shadow)
			}
			if err := errors.Join(json.Unmarshal([]byte(canary), &p.Canary), json.Unmarshal([]byte(stable), &p.Stable),
				json.Unmarshal([]byte(result), &p.Result), shadowErr); err != nil {
				return fmt.Errorf("decode point (interval %d, metric %q): %w", p.Interval, p.Metric, err)
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("series of %q run %d: %w", name, run, err)
	}
	return out, nil
}

// Events returns stored events in ID order: those of q.Name's rollout, or of
// every rollout (deleted ones included) when q.Name is "". Page with AfterID
// set to the last ID seen.
func (db *DB) Events(ctx context.Context, q EventQuery) ([]EventRecord, error) {
	limit := int64(q.Limit)
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var out []EventRecord
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var r EventRecord
			var at sql.NullInt64
			var phase string
			e := &r.Event
			if err := rows.Scan(&r.ID, &r.Rollout, &at, &e.Run, &e.Type, &e.Severity, &phase, &e.Weight, &e.Step, &e.Reason); err != nil {
				return err
			}
			e.Time, e.Phase = timeOf(at), rollout.Phase(phase)
			out = append(out, r)
		}
		return rows.Err()
	}
	const columns = `SELECT e.id, r.name, e.time, e.run, e.type, e.severity, e.phase, e.weight, e.step, e.reason
		FROM events e JOIN rollouts r ON r.id = e.rollout_id`
	if q.Name == "" {
		if db.isClosed() {
			return nil, ErrClosed
		}
		rows, err := db.r.QueryContext(ctx, columns+` WHERE e.id > ? ORDER BY e.id LIMIT ?`, q.AfterID, limit)
		if err == nil {
			err = scan(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		return out, nil
	}
	err := db.read(ctx, q.Name, func(tx *sql.Tx, id int64) error {
		rows, err := tx.QueryContext(ctx, columns+` WHERE e.rollout_id = ? AND e.id > ? ORDER BY e.id LIMIT ?`, id, q.AfterID, limit)
		if err != nil {
			return err
		}
		return scan(rows)
	})
	if err != nil {
		return nil, fmt.Errorf("events of %q: %w", q.Name, err)
	}
	return out, nil
}

// read runs f in a read transaction with the id of the named live rollout.
func (db *DB) read(ctx context.Context, name string, f func(tx *sql.Tx, id int64) error) error {
	if db.isClosed() {
		return ErrClosed
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to lose
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM rollouts WHERE name = ? AND deleted_at IS NULL`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("rollout %w", ErrNotFound)
	}
	if err != nil {
		return err
	}
	return f(tx, id)
}

func (db *DB) isClosed() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.closed
}
