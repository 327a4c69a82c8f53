package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Durability says what a Commit that returned nil survives.
type Durability int

const (
	// DurablePowerLoss (the default) fsyncs every commit group
	// (synchronous=FULL): a returned Commit survives a process crash and a
	// power loss.
	DurablePowerLoss Durability = iota
	// DurableCrash does not fsync commits (synchronous=NORMAL): a returned
	// Commit survives a process crash, but a power loss may lose the commits
	// since the last checkpoint. The database stays consistent either way.
	DurableCrash
)

func (d Durability) synchronous() (string, error) {
	switch d {
	case DurablePowerLoss:
		return "FULL", nil
	case DurableCrash:
		return "NORMAL", nil
	}
	return "", fmt.Errorf("unknown durability %d", int(d))
}

// Options configure a DB. The zero value is ready to use.
type Options struct {
	// Logger receives the store's warnings; nil discards them.
	Logger *slog.Logger
	// Durability chooses between fsyncing each commit group (the default)
	// and relying on the operating system to write it.
	Durability Durability
	// BusyTimeout bounds how long a statement waits for a lock another
	// process holds (another aviary on the same file, a backup tool);
	// 0 means 5s.
	BusyTimeout time.Duration
	// Readers caps the connections that serve reads; 0 means 4.
	Readers int
}

// maxGroup caps the Commits applied in one SQLite transaction, so that one
// group's latency stays bounded under a burst.
const maxGroup = 256

// DB is aviary's store: one SQLite file in WAL mode. It is safe for
// concurrent use. Writes go through one goroutine that owns the only write
// connection and commits queued Commits in groups; reads use their own pool
// and do not wait for writes.
type DB struct {
	log *slog.Logger
	w   *sql.DB // one connection, used only by the writer goroutine
	// prepared are the writer's statements, prepared on w's connection.
	prepared map[string]*sql.Stmt
	r        *sql.DB // query_only connections for the read methods
	bg       context.Context

	mu     sync.RWMutex // guards closed against the send on queue
	closed bool
	queue  chan *request
	done   chan struct{} // closed when the writer goroutine has ended

	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating it if it does not exist, and
// migrates its schema to this aviary's version; it refuses a database written
// by a newer aviary (ErrSchemaTooNew) or by another program (ErrNotAviary)
// without changing it. The directory must exist. Opening a current database
// does not write to it. ctx bounds the opening and migration only.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	syncMode, err := opts.Durability.synchronous()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = 4
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busy.Milliseconds())
	// The write-ahead log is truncated back to 64 MiB after a checkpoint
	// that follows a burst, instead of keeping its largest size forever.
	w, err := sql.Open("sqlite", dsn(abs, common+"&_pragma=synchronous("+syncMode+")&_pragma=journal_size_limit(67108864)&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := prepare(ctx, w, abs); err != nil {
		w.Close()
		return nil, err
	}
	prepared, err := prepareWrites(ctx, w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(abs, common+"&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	db := &DB{
		log:      log,
		w:        w,
		prepared: prepared,
		r:        r,
		bg:       context.WithoutCancel(ctx),
		queue:    make(chan *request, maxGroup),
		done:     make(chan struct{}),
	}
	go db.writeLoop()
	return db, nil
}

// dsn is the driver's name for the file at path with the given parameters.
// The path is escaped as SQLite's URI filenames want it.
func dsn(path, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(path))
	return "file:" + esc + "?" + params
}

// prepare checks that the file is an aviary database this aviary
// understands, switches it to WAL mode (a no-op when it is) and migrates the
// schema. Nothing is written before the checks pass.
func prepare(ctx context.Context, w *sql.DB, path string) error {
	conn, err := w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	defer conn.Close()
	version, err := check(ctx, conn, path)
	if err != nil {
		return err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("open store %s: set WAL mode: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open store %s: journal mode is %q, not wal (is the file on a file system without shared memory?)", path, mode)
	}
	return migrate(ctx, conn, path, version)
}

// Close waits for the Commits already accepted to finish, then closes the
// database. Calls after the first return its result; methods called after
// Close return ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.closed = true
		close(db.queue)
		db.mu.Unlock()
		<-db.done
		for _, s := range db.prepared {
			s.Close()
		}
		db.closeErr = errors.Join(db.r.Close(), db.w.Close())
	})
	return db.closeErr
}

// A request is one Commit or Delete waiting for the writer.
type request struct {
	apply func(tx *wtx) error
	state atomic.Int32 // queued, taken or abandoned
	done  chan error   // receives the outcome once taken
}

const (
	queued int32 = iota
	taken
	abandoned
)

// write runs apply in a transaction of the writer and returns its outcome.
// If ctx ends before the writer takes the request, nothing is written and
// write returns ctx.Err(); once taken, the request is carried out and write
// returns its real outcome, so that a nil error always means committed and an
// error always means not committed.
func (db *DB) write(ctx context.Context, apply func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &request{apply: apply, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.queue <- req:
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	db.mu.RUnlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		if req.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		return <-req.done
	}
}

// writeLoop commits queued requests in groups until Close.
func (db *DB) writeLoop() {
	defer close(db.done)
	group := make([]*request, 0, maxGroup)
	for req := range db.queue {
		group = append(group[:0], req)
	fill:
		for len(group) < maxGroup {
			select {
			case req, ok := <-db.queue:
				if !ok {
					break fill
				}
				group = append(group, req)
			default:
				break fill
			}
		}
		db.commitGroup(group)
	}
}

// commitGroup applies the requests in one transaction, each in its own
// savepoint so that a refused request leaves no trace and does not affect
// the others, and commits them with one sync.
func (db *DB) commitGroup(group []*request) {
	live := make([]*request, 0, len(group))
	for _, req := range group {
		if req.state.CompareAndSwap(queued, taken) {
			live = append(live, req)
		}
	}
	if len(live) == 0 {
		return
	}
	errs := make([]error, len(live))
	reply := func() {
		for i, req := range live {
			req.done <- errs[i]
		}
	}
	defer reply()
	failAll := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}

	sqlTx, err := db.w.BeginTx(db.bg, nil)
	if err != nil {
		failAll(fmt.Errorf("begin: %w", err))
		return
	}
	tx := &wtx{ctx: db.bg, tx: sqlTx, prepared: db.prepared, bound: map[string]*sql.Stmt{}}
	if len(live) == 1 {
		if errs[0] = live[0].apply(tx); errs[0] != nil {
			sqlTx.Rollback() //nolint:errcheck // the refusal is the error that matters
			return
		}
		if err := sqlTx.Commit(); err != nil {
			errs[0] = fmt.Errorf("commit: %w", err)
		}
		return
	}
	applied := 0
	for i, req := range live {
		if _, err := tx.exec(qSavepoint); err != nil {
			sqlTx.Rollback() //nolint:errcheck
			failAll(fmt.Errorf("savepoint: %w", err))
			return
		}
		if errs[i] = req.apply(tx); errs[i] != nil {
			if _, err := tx.exec(qRollbackTo); err != nil {
				sqlTx.Rollback() //nolint:errcheck
				failAll(fmt.Errorf("roll back a refused commit: %w", err))
				return
			}
		} else {
			applied++
		}
		if _, err := tx.exec(qRelease); err != nil {
			sqlTx.Rollback() //nolint:errcheck
			failAll(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if applied == 0 {
		sqlTx.Rollback() //nolint:errcheck
		return
	}
	if err := sqlTx.Commit(); err != nil {
		failAll(fmt.Errorf("commit: %w", err))
	}
}
