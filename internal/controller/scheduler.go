package controller

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler wakes rollouts at their WakeAt. It keeps one timer for the
// earliest wake-up of all rollouts (a heap), so thousands of rollouts cost
// one goroutine, and hands due rollouts to the workers, at most once each
// until a worker takes it.
type scheduler struct {
	clock   Clock
	metrics *metrics

	mu     sync.Mutex
	items  wakeHeap
	byName map[string]*wakeItem
	queued map[string]bool
	kick   chan struct{}
	due    chan string
}

type wakeItem struct {
	name  string
	at    time.Time
	index int
}

// maxQueued bounds the rollouts waiting for a worker at once.
const maxQueued = 1 << 16

func newScheduler(clock Clock, m *metrics) *scheduler {
	return &scheduler{
		clock: clock, metrics: m,
		byName: map[string]*wakeItem{},
		queued: map[string]bool{},
		kick:   make(chan struct{}, 1),
		due:    make(chan string, maxQueued),
	}
}

// set schedules name at at (replacing its previous time); a zero time
// unschedules it.
func (s *scheduler) set(name string, at time.Time) {
	s.mu.Lock()
	if it, ok := s.byName[name]; ok {
		if at.IsZero() {
			heap.Remove(&s.items, it.index)
			delete(s.byName, name)
		} else {
			it.at = at
			heap.Fix(&s.items, it.index)
		}
	} else if !at.IsZero() {
		it := &wakeItem{name: name, at: at}
		heap.Push(&s.items, it)
		s.byName[name] = it
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *scheduler) remove(name string) { s.set(name, time.Time{}) }

// run dispatches due rollouts until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	for {
		wait := s.dispatch()
		var timer Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = s.clock.NewTimer(wait)
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-s.kick:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// dispatch hands every due rollout to the workers and returns how long to
// wait for the next one (-1: none scheduled).
func (s *scheduler) dispatch() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for s.items.Len() > 0 {
		it := s.items[0]
		if it.at.After(now) {
			return it.at.Sub(now)
		}
		if s.queued[it.name] {
			// A worker has not taken it yet; it will evaluate with the latest state.
			heap.Pop(&s.items)
			delete(s.byName, it.name)
			continue
		}
		select {
		case s.due <- it.name:
		default:
			return 10 * time.Millisecond // workers are saturated: try again shortly
		}
		heap.Pop(&s.items)
		delete(s.byName, it.name)
		s.queued[it.name] = true
		s.metrics.lateness.Observe(now.Sub(it.at).Seconds())
	}
	return -1
}

// take marks name as taken by a worker, so that it can be queued again.
func (s *scheduler) take(name string) {
	s.mu.Lock()
	delete(s.queued, name)
	s.mu.Unlock()
}

// work evaluates due rollouts until ctx ends.
func (c *Controller) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-c.sched.due:
			c.sched.take(name)
			c.evaluate(ctx, name)
		}
	}
}

type wakeHeap []*wakeItem

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *wakeHeap) Push(x any) {
	it := x.(*wakeItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *wakeHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
