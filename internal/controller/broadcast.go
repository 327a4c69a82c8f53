package controller

import (
	"sync"

	"aviary/internal/rollout"
	"aviary/internal/store"
)

// Change tells subscribers that a rollout changed.
type Change struct {
	Name    string          `json:"name"`
	Record  store.Record    `json:"record"`
	Events  []rollout.Event `json:"events,omitempty"`
	Deleted bool            `json:"deleted,omitempty"`
	// Resync means changes were dropped because the subscriber fell
	// behind: it should read every rollout again.
	Resync bool `json:"resync,omitempty"`
}

// broadcaster fans changes out to subscribers without ever blocking the
// controller: a subscriber whose buffer is full loses changes and is told
// to resync.
type broadcaster struct {
	mu   sync.Mutex
	next int
	subs map[int]*subscriber
}

type subscriber struct {
	ch   chan Change
	lost bool
}

const subscriberBuffer = 256

func newBroadcaster() *broadcaster { return &broadcaster{subs: map[int]*subscriber{}} }

func (b *broadcaster) subscribe() (<-chan Change, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	s := &subscriber{ch: make(chan Change, subscriberBuffer)}
	b.subs[id] = s
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			delete(b.subs, id)
			close(s.ch)
		})
	}
}

func (b *broadcaster) publish(c Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.lost {
			select {
			case s.ch <- Change{Resync: true}:
				s.lost = false
			default:
				continue
			}
		}
		select {
		case s.ch <- c:
		default:
			s.lost = true
		}
	}
}
