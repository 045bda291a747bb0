package anthropic

import (
	"sync"
	"time"
)

// outcome is what one upstream attempt says about the upstream's health.
type outcome uint8

const (
	outcomeNeutral outcome = iota // says nothing (caller gave up, no key)
	outcomeHealthy                // any answer that is not 5xx/529
	outcomeFailure                // 5xx, 529, timeout, connection failure
)

// breaker is a consecutive-failure circuit breaker with a single half-open
// probe. While open it refuses calls without touching the network, so an
// overloaded upstream is not hammered by every replica's retries.
type breaker struct {
	threshold int // < 0: disabled
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	failures int
	open     bool
	until    time.Time // no probe before this
	probing  bool      // the half-open probe is in flight
}

// allow says whether a call may go upstream now and whether it is the
// half-open probe, whose outcome must then be recorded.
func (b *breaker) allow() (probe, ok bool) {
	if b.threshold < 0 {
		return false, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return false, true
	}
	if b.probing || b.now().Before(b.until) {
		return false, false
	}
	b.probing = true
	return true, true
}

func (b *breaker) record(probe bool, o outcome) {
	if b.threshold < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch o {
	case outcomeHealthy:
		b.failures = 0
		b.open = false
	case outcomeFailure:
		b.failures++
		switch {
		case probe:
			b.until = b.now().Add(b.cooldown) // a failed probe re-opens it
		case !b.open && b.failures >= b.threshold:
			b.open = true
			b.until = b.now().Add(b.cooldown)
		}
	}
}

func (b *breaker) isOpen() bool {
	if b.threshold < 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

func (b *breaker) retryAfter() time.Duration {
	if b.threshold < 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return 0
	}
	return max(b.until.Sub(b.now()), 0)
}
