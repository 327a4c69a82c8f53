package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"aviary/internal/rollout"
)

// Commit stores the transitions atomically: all of them or none, and after
// a crash all of them or none. It is safe for concurrent use; concurrent
// Commits are written in groups that share one SQLite transaction and one
// sync, each still all or nothing on its own (see the package doc).
//
// For each transition, in order: a Manifest creates the rollout or adds a
// revision when it differs from the latest one; the Status is written; a
// Route replaces the stored one unless its generation is lower
// (ErrStaleRoute); a Status.Run higher than any recorded run records a new
// run (version, stable version and start from the status); Finished close
// runs (a Finish for a run with no record records it, started at At); Events
// and Points are appended.
//
// Errors: a transition for a rollout that does not exist and has no Manifest
// wraps ErrNotFound; a transition without a name or time, a manifest named
// otherwise, or a value JSON cannot encode (NaN) is refused before anything is
// written. Any error means nothing of this Commit was written. If ctx ends
// before the writer takes the Commit, it returns ctx.Err() and writes
// nothing; once taken, Commit waits for the real outcome, so that nil always
// means committed (durable as Options.Durability says). After Close it
// returns ErrClosed.
func (db *DB) Commit(ctx context.Context, ts ...Transition) error {
	if len(ts) == 0 {
		return nil
	}
	enc := make([]encoded, len(ts))
	for i := range ts {
		var err error
		if enc[i], err = encode(&ts[i]); err != nil {
			return err
		}
	}
	return db.write(ctx, func(tx *wtx) error {
		for i := range enc {
			if err := db.apply(tx, &enc[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete removes the named rollout: Load, Get and the other reads by name no
// longer see it, and a later Commit with a Manifest creates a new rollout of
// that name with a history of its own. The deleted rollout's history stays in
// the file for audits, and its events stay in the global event log
// (EventQuery with Name ""), which gets one more: an EventDeleted at at.
// Delete wraps ErrNotFound when no such rollout exists. Its concurrency and
// error contract is Commit's.
func (db *DB) Delete(ctx context.Context, name string, at time.Time) error {
	atN, err := timeArg(at, "time")
	if err != nil || at.IsZero() {
		return fmt.Errorf("delete %q: needs a time in the years 1678-2261", name)
	}
	return db.write(ctx, func(tx *wtx) error {
		var id int64
		var status string
		err := tx.queryRow(qRolloutStatus, name).Scan(&id, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delete rollout %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("delete rollout %q: %w", name, err)
		}
		var st rollout.Status
		if err := json.Unmarshal([]byte(status), &st); err != nil {
			return fmt.Errorf("delete rollout %q: decode status: %w", name, err)
		}
		if _, err := tx.exec(qDeleteRollout, atN, atN, id); err != nil {
			return fmt.Errorf("delete rollout %q: %w", name, err)
		}
		ev := rollout.Event{Time: at, Run: st.Run, Type: EventDeleted, Severity: rollout.SeverityInfo,
			Phase: st.Phase, Weight: st.Weight, Step: st.Step, Reason: "rollout deleted"}
		if err := insertEvent(tx, id, &ev, atN); err != nil {
			return fmt.Errorf("delete rollout %q: %w", name, err)
		}
		return nil
	})
}

// pruneBatch is how many runs' measurements one pruning transaction
// deletes at most, so that pruning never holds the writer for long.
const pruneBatch = 50

// Prune deletes the measurements (the series of Series) of every rollout's
// runs except its last keep: those of runs numbered keep or more below the
// rollout's current run. Runs, events and specs are kept. It deletes in
// small transactions, between which commits proceed, and returns how many
// points it deleted. keep must be at least 1.
func (db *DB) Prune(ctx context.Context, keep int) (int64, error) {
	if keep < 1 {
		return 0, fmt.Errorf("prune: keep at least the current run's measurements, got keep %d", keep)
	}
	var total int64
	for {
		var n int64
		err := db.write(ctx, func(tx *wtx) error {
			res, err := tx.exec(qPrunePoints, keep, pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune measurements: %w", err)
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// encoded is a transition checked and turned into column values, ready for
// the writer: the JSON encoding runs on the caller's goroutine.
type encoded struct {
	t        *Transition
	at       int64
	manifest string // "": no new manifest
	status   string
	route    string // "": keep the stored route
	events   []any  // event times
	points   []encodedPoint
}

type encodedPoint struct {
	at                     any
	canary, stable, result string
	shadow                 any // JSON text, or nil
}

func encode(t *Transition) (encoded, error) {
	e := encoded{t: t}
	fail := func(format string, args ...any) (encoded, error) {
		return encoded{}, fmt.Errorf("commit %q: %s", t.Name, fmt.Sprintf(format, args...))
	}
	if t.Name == "" {
		return fail("a transition needs the rollout's name")
	}
	at, err := timeArg(t.At, "at")
	if err != nil || t.At.IsZero() {
		return fail("a transition needs a time in the years 1678-2261, got %s", t.At)
	}
	e.at = at.(int64)
	if t.Manifest != nil {
		if t.Manifest.Metadata.Name != t.Name {
			return fail("the manifest is named %q", t.Manifest.Metadata.Name)
		}
		if e.manifest, err = jsonText(t.Manifest); err != nil {
			return fail("encode manifest: %v", err)
		}
	}
	if e.status, err = jsonText(t.Status); err != nil {
		return fail("encode status: %v", err)
	}
	if t.Route != nil {
		if e.route, err = jsonText(t.Route); err != nil {
			return fail("encode route: %v", err)
		}
	}
	for i := range t.Events {
		v, err := timeArg(t.Events[i].Time, "time")
		if err != nil {
			return fail("events[%d]: %v", i, err)
		}
		e.events = append(e.events, v)
	}
	for i := range t.Points {
		p := &t.Points[i]
		var ep encodedPoint
		if ep.at, err = timeArg(p.At, "at"); err != nil {
			return fail("points[%d]: %v", i, err)
		}
		if ep.canary, err = jsonText(p.Canary); err == nil {
			if ep.stable, err = jsonText(p.Stable); err == nil {
				ep.result, err = jsonText(p.Result)
			}
		}
		if err == nil && p.Shadow != nil {
			ep.shadow, err = jsonText(p.Shadow)
		}
		if err != nil {
			return fail("points[%d] (run %d, interval %d, metric %q): encode: %v", i, p.Run, p.Interval, p.Metric, err)
		}
		e.points = append(e.points, ep)
	}
	return e, nil
}

// apply writes one encoded transition inside the writer's transaction.
func (db *DB) apply(tx *wtx, e *encoded) error {
	t := e.t
	fail := func(what string, err error) error {
		return fmt.Errorf("commit %q: %s: %w", t.Name, what, err)
	}
	var id, revision, generation int64
	var lastRun int
	err := tx.queryRow(qRollout, t.Name).Scan(&id, &revision, &generation, &lastRun)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fail("read rollout", err)
	}
	if t.Route != nil {
		if t.Route.Generation < generation {
			return fmt.Errorf("commit %q: route generation %d is lower than the stored %d: %w", t.Name, t.Route.Generation, generation, ErrStaleRoute)
		}
		generation = t.Route.Generation
	}

	switch {
	case !exists && e.manifest == "":
		return fmt.Errorf("commit %q: rollout %w (a new rollout needs a manifest)", t.Name, ErrNotFound)
	case !exists:
		revision = 1
		err := tx.queryRow(qCreateRollout, t.Name, revision, string(t.Status.Phase), t.Status.Run, generation, e.status, nullString(e.route), e.at, e.at).Scan(&id)
		if err != nil {
			return fail("create rollout", err)
		}
		if _, err := tx.exec(qInsertRevision, id, revision, e.manifest, e.at); err != nil {
			return fail("store revision", err)
		}
	default:
		if e.manifest != "" {
			var last string
			err := tx.queryRow(qRevision, id, revision).Scan(&last)
			if err != nil {
				return fail("read latest revision", err)
			}
			if last != e.manifest {
				revision++
				if _, err := tx.exec(qInsertRevision, id, revision, e.manifest, e.at); err != nil {
					return fail("store revision", err)
				}
			}
		}
		_, err := tx.exec(qUpdateRollout, revision, string(t.Status.Phase), t.Status.Run, generation, e.status, nullString(e.route), e.at, id)
		if err != nil {
			return fail("update rollout", err)
		}
	}

	if err := db.applyRuns(tx, id, lastRun, e); err != nil {
		return fail("record runs", err)
	}
	for i := range t.Events {
		if err := insertEvent(tx, id, &t.Events[i], e.events[i]); err != nil {
			return fail("append events", err)
		}
	}
	for i := range t.Points {
		p, ep := &t.Points[i], &e.points[i]
		_, err := tx.exec(qUpsertPoint, id, p.Run, p.Interval, p.Metric, ep.at, p.Result.Verdict.String(), ep.canary, ep.stable, ep.result, ep.shadow)
		if err != nil {
			return fail("append points", err)
		}
	}
	return nil
}

// applyRuns records a new run when the status counts one more, and closes
// the finished ones.
func (db *DB) applyRuns(tx *wtx, id int64, lastRun int, e *encoded) error {
	t := e.t
	st := &t.Status
	if st.Run > 0 {
		if st.Run > lastRun {
			version := ""
			if st.Canary != nil {
				version = st.Canary.Version
			}
			started, err := timeArg(st.RunStartedAt, "status.runStartedAt")
			if err != nil {
				return err
			}
			if _, err := tx.exec(qInsertRun, id, st.Run, version, st.Stable.Version, started); err != nil {
				return err
			}
		}
	}
	for _, f := range t.Finished {
		res, err := tx.exec(qFinishRun, string(f.Outcome), f.Reason, e.at, id, f.Run)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			if err != nil {
				return err
			}
			continue
		}
		// The run was never recorded (a controller that merged transitions
		// may skip a run's start): record it with what the Finish knows
		// rather than refuse the whole transition.
		db.log.Warn("finish of a run with no record", "rollout", t.Name, "run", f.Run, "outcome", string(f.Outcome))
		if _, err := tx.exec(qInsertFinishedRun, id, f.Run, f.Version, e.at, e.at, string(f.Outcome), f.Reason); err != nil {
			return err
		}
	}
	return nil
}

func insertEvent(tx *wtx, id int64, ev *rollout.Event, at any) error {
	_, err := tx.exec(qInsertEvent, id, at, ev.Run, ev.Type, ev.Severity, string(ev.Phase), ev.Weight, ev.Step, ev.Reason)
	return err
}

// minTime and maxTime bound the times nanoseconds since 1970 in an int64 can
// hold, with a margin.
var (
	minTime = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// timeArg is the column value of t: nanoseconds since the Unix epoch, or
// NULL for the zero time.
func timeArg(t time.Time, field string) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return nil, fmt.Errorf("%s %s is outside the years 1678-2261", field, t)
	}
	return t.UnixNano(), nil
}

// timeOf is the time stored as timeArg wrote it, in UTC.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonText is v encoded as JSON, as the TEXT columns hold it.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
