package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The writer's statements. They are prepared once, when the store opens, on
// the writer's only connection, and bound to each transaction on first use:
// parsing SQL would otherwise cost as much as executing it.
const (
	qRollout = `SELECT id, revision, generation,
		(SELECT coalesce(max(run), 0) FROM runs WHERE rollout_id = rollouts.id)
		FROM rollouts WHERE name = ? AND deleted_at IS NULL`
	qRolloutStatus = `SELECT id, status FROM rollouts WHERE name = ? AND deleted_at IS NULL`
	qCreateRollout = `INSERT INTO rollouts
		(name, revision, phase, run, generation, status, route, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	qUpdateRollout = `UPDATE rollouts SET revision = ?, phase = ?, run = ?, generation = ?,
		status = ?, route = coalesce(?, route), updated_at = ? WHERE id = ?`
	qDeleteRollout  = `UPDATE rollouts SET deleted_at = ?, updated_at = ? WHERE id = ?`
	qRevision       = `SELECT manifest FROM revisions WHERE rollout_id = ? AND revision = ?`
	qInsertRevision = `INSERT INTO revisions (rollout_id, revision, manifest, applied_at) VALUES (?, ?, ?, ?)`
	qInsertRun      = `INSERT INTO runs (rollout_id, run, version, stable_version, started_at) VALUES (?, ?, ?, ?, ?)`
	qFinishRun      = `UPDATE runs SET outcome = ?, reason = ?, ended_at = ? WHERE rollout_id = ? AND run = ?`
	// qInsertFinishedRun records a run whose start was never recorded.
	qInsertFinishedRun = `INSERT INTO runs (rollout_id, run, version, stable_version, started_at, ended_at, outcome, reason)
		VALUES (?, ?, ?, '', ?, ?, ?, ?)`
	qInsertEvent = `INSERT INTO events (rollout_id, time, run, type, severity, phase, weight, step, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpsertPoint = `INSERT INTO points (rollout_id, run, interval, metric, at, verdict, canary, stable, result, shadow)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (rollout_id, run, interval, metric) DO UPDATE SET
		at = excluded.at, verdict = excluded.verdict, canary = excluded.canary,
		stable = excluded.stable, result = excluded.result, shadow = excluded.shadow`
	// qPrunePoints deletes the measurements of up to ? runs (of any
	// rollout) that lie ? runs or more behind their rollout's current run.
	qPrunePoints = `DELETE FROM points WHERE (rollout_id, run) IN (
		SELECT p.rollout_id, p.run FROM points p JOIN rollouts r ON r.id = p.rollout_id
		WHERE p.run <= r.run - ? GROUP BY p.rollout_id, p.run LIMIT ?)`
	qSavepoint  = `SAVEPOINT c`
	qRollbackTo = `ROLLBACK TO c`
	qRelease    = `RELEASE c`
)

var writeQueries = []string{qRollout, qRolloutStatus, qCreateRollout, qUpdateRollout, qDeleteRollout, qRevision,
	qInsertRevision, qInsertRun, qFinishRun, qInsertFinishedRun, qInsertEvent, qUpsertPoint, qPrunePoints, qSavepoint, qRollbackTo, qRelease}

// prepareWrites prepares the writer's statements on w. It must run while no
// transaction holds w's only connection.
func prepareWrites(ctx context.Context, w *sql.DB) (map[string]*sql.Stmt, error) {
	out := make(map[string]*sql.Stmt, len(writeQueries))
	for _, q := range writeQueries {
		s, err := w.PrepareContext(ctx, q)
		if err != nil {
			for _, s := range out {
				s.Close()
			}
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		out[q] = s
	}
	return out, nil
}

// wtx is one transaction of the writer goroutine.
type wtx struct {
	ctx      context.Context
	tx       *sql.Tx
	prepared map[string]*sql.Stmt // the store's, read-only
	bound    map[string]*sql.Stmt // bound to tx, closed with it
}

func (w *wtx) stmt(q string) *sql.Stmt {
	s, ok := w.bound[q]
	if !ok {
		p, ok := w.prepared[q]
		if !ok {
			panic("store: statement not in writeQueries: " + q)
		}
		s = w.tx.StmtContext(w.ctx, p)
		w.bound[q] = s
	}
	return s
}

func (w *wtx) exec(q string, args ...any) (sql.Result, error) {
	return w.stmt(q).ExecContext(w.ctx, args...)
}

func (w *wtx) queryRow(q string, args ...any) *sql.Row {
	return w.stmt(q).QueryRowContext(w.ctx, args...)
}
