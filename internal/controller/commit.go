package controller

import (
	"context"
	"errors"
	"time"

	"aviary/internal/store"
)

// commitReq is a transition waiting to be committed.
type commitReq struct {
	tr   store.Transition
	done chan error
}

// maxBatch bounds the transitions committed in one database transaction.
const maxBatch = 256

var errStopped = errors.New("controller stopped before the commit")

// commit hands a transition to the committer and waits for it to be
// durable. Transitions that arrive together are committed together (group
// commit), which is what lets one server run thousands of rollouts.
func (c *Controller) commit(ctx context.Context, tr store.Transition) error {
	req := commitReq{tr: tr, done: make(chan error, 1)}
	select {
	case c.commits <- req:
	case <-c.commitsStopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	// The committer answers every request it took; one that it never took
	// because it stopped was not committed.
	select {
	case err := <-req.done:
		return err
	case <-c.commitsStopped:
		select {
		case err := <-req.done:
			return err
		default:
			return errStopped
		}
	}
}

// commitLoop commits batches until stop is closed, then refuses what is
// left and closes c.commitsStopped.
func (c *Controller) commitLoop(stop <-chan struct{}) {
	defer close(c.commitsStopped)
	ctx := context.Background()
	for {
		select {
		case <-stop:
			for {
				select {
				case req := <-c.commits:
					req.done <- errStopped
				default:
					return
				}
			}
		case req := <-c.commits:
			batch := []commitReq{req}
		fill:
			for len(batch) < maxBatch {
				select {
				case r := <-c.commits:
					batch = append(batch, r)
				default:
					break fill
				}
			}
			c.flush(ctx, batch)
		}
	}
}

// flush commits a batch; if it fails, each transition is committed alone so
// that one bad transition does not sink the others.
func (c *Controller) flush(ctx context.Context, batch []commitReq) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ts := make([]store.Transition, len(batch))
	for i, r := range batch {
		ts[i] = r.tr
	}
	start := time.Now()
	err := c.opts.Store.Commit(ctx, ts...)
	c.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	c.metrics.commitBatch.Observe(float64(len(batch)))
	if err == nil || len(batch) == 1 {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for _, r := range batch {
		r.done <- c.opts.Store.Commit(ctx, r.tr)
	}
}
