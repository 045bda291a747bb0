package mock

import (
	"sync"
	"sync/atomic"
)

// faultState holds the run-time defaults and the queue of one-shot faults.
type faultState struct {
	initial  Directives
	defaults atomic.Pointer[Directives]

	mu     sync.Mutex
	queue  []Directives
	queued atomic.Int64 // len(queue), read without the lock on the hot path
}

func newFaultState(initial Directives) *faultState {
	f := &faultState{initial: initial}
	f.defaults.Store(&initial)
	return f
}

// plan merges the defaults, the next queued fault (consuming it) and the prompt's own
// directives, each overriding the one before.
func (f *faultState) plan(prompt *Directives) Directives {
	d := *f.defaults.Load()
	if f.queued.Load() > 0 {
		f.mu.Lock()
		if len(f.queue) > 0 {
			next := f.queue[0]
			f.queue = f.queue[1:]
			f.queued.Store(int64(len(f.queue)))
			f.mu.Unlock()
			d = d.merge(&next)
		} else {
			f.mu.Unlock()
		}
	}
	return d.merge(prompt)
}

func (f *faultState) enqueue(ds []Directives) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, ds...)
	f.queued.Store(int64(len(f.queue)))
	return len(f.queue)
}

func (f *faultState) pending() []Directives {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Directives{}, f.queue...)
}

func (f *faultState) clearQueue() {
	f.mu.Lock()
	f.queue = nil
	f.queued.Store(0)
	f.mu.Unlock()
}

func (f *faultState) setDefaults(d Directives) { f.defaults.Store(&d) }

func (f *faultState) currentDefaults() Directives { return *f.defaults.Load() }

func (f *faultState) reset() {
	f.clearQueue()
	f.setDefaults(f.initial)
}
