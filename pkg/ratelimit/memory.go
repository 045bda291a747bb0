package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BackendMemory is Backend() of the in-process limiter.
const BackendMemory = "memory"

// MemoryOptions configures NewMemory. The zero value is ready to use.
type MemoryOptions struct {
	// Now is the clock (default time.Now). GCRA windows and UTC budget days
	// both follow it, so tests can move time without sleeping.
	Now func() time.Time
	// MaxKeys caps how many identities are tracked (default 100000, about
	// 15 MB). Idle ones are swept first; beyond the cap the least recently
	// seen of a small sample is evicted, which resets only that identity's
	// counters, so a flood of spoofed identities costs bounded memory and
	// does not free an identity in active use. The global cap is never evicted.
	MaxKeys int
	// SweepInterval is how often idle identities are dropped (default 1m).
	SweepInterval time.Duration
}

// Memory is the in-process Limiter: the embedded default when no Redis is
// configured (one replica), and the per-replica fallback of Resilient. It
// uses the same GCRA arithmetic as redis_rate, so its answers match Redis.
type Memory struct {
	now        func() time.Time
	maxKeys    int
	sweepEvery time.Duration
	backend    string

	mu        sync.Mutex
	entries   map[string]*memEntry
	global    memBudget
	lastSweep time.Time
}

var _ Limiter = (*Memory)(nil)

// memEntry is one identity's state. TATs are redis_rate seconds (0 = none).
type memEntry struct {
	reqTAT   float64
	tokTAT   float64
	budget   memBudget
	lastSeen float64            // for eviction: the least recently seen goes first
	calls    map[string]float64 // concurrency leases: call id → expiry
}

// liveCalls drops expired leases and returns how many are held.
func (e *memEntry) liveCalls(now float64) int {
	for id, exp := range e.calls {
		if exp <= now {
			delete(e.calls, id)
		}
	}
	return len(e.calls)
}

// memBudget is a day's spend in micro-dollars, including reservations.
type memBudget struct {
	day   string
	micro int64
}

// spent returns the spend of day (0 when the counter belongs to another day).
func (b memBudget) spent(day string) int64 {
	if b.day != day {
		return 0
	}
	return b.micro
}

// add changes day's spend by delta, never below zero. A delta for a day the
// counter has already moved past is dropped: that budget no longer limits
// anything.
func (b *memBudget) add(day string, delta int64) {
	if b.day != day {
		if b.day > day {
			return
		}
		b.day, b.micro = day, 0
	}
	b.micro = max(0, b.micro+delta)
}

// NewMemory returns an in-process limiter.
func NewMemory(opts MemoryOptions) (*Memory, error) {
	if opts.MaxKeys < 0 {
		return nil, fmt.Errorf("creating memory limiter: MaxKeys must be >= 0, got %d", opts.MaxKeys)
	}
	if opts.SweepInterval < 0 {
		return nil, fmt.Errorf("creating memory limiter: SweepInterval must be >= 0, got %s", opts.SweepInterval)
	}
	m := &Memory{
		now:        opts.Now,
		maxKeys:    opts.MaxKeys,
		sweepEvery: opts.SweepInterval,
		backend:    BackendMemory,
		entries:    make(map[string]*memEntry),
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.maxKeys == 0 {
		m.maxKeys = 100_000
	}
	if m.sweepEvery == 0 {
		m.sweepEvery = time.Minute
	}
	return m, nil
}

// Admit implements Limiter.
func (m *Memory) Admit(_ context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, fmt.Errorf("admitting request: %w", err)
	}
	p := newPlan(req)
	t := m.now()
	day := utcDay(t)
	d := Decision{Limit: p.requests, Backend: m.backend}
	if r := p.unsatisfiable(); r != ReasonNone {
		d.Reason, d.Unsatisfiable = r, true
		return d, nil
	}
	now := gcraSeconds(t)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.maybeSweep(t, now)
	e := m.entries[req.Key]
	var cur memEntry
	if e != nil {
		cur = *e
	}

	var reqRes, tokRes gcraResult
	reason, retry := ReasonNone, time.Duration(0)
	if p.checkRequest {
		reqRes = gcra(cur.reqTAT, now, int64(p.requests.Burst), int64(p.requests.Rate), p.requests.Period.Seconds(), 1)
		if !reqRes.allowed {
			reason, retry = ReasonRequests, seconds(reqRes.retryAfter)
		}
	}
	if p.checkTokens {
		tokRes = gcra(cur.tokTAT, now, p.tpm, p.tpm, tokenPeriod.Seconds(), p.tokens)
		if !tokRes.allowed && reason == ReasonNone {
			reason, retry = ReasonTokens, seconds(tokRes.retryAfter)
		}
	}
	if p.checkBudget && cur.budget.spent(day)+p.costMicro > p.budgetMicro && reason == ReasonNone {
		reason, retry = ReasonBudget, untilMidnight(t)
	}
	if p.checkGlobal && m.global.spent(day)+p.costMicro > p.globalMicro && reason == ReasonNone {
		reason, retry = ReasonGlobalBudget, untilMidnight(t)
	}
	if p.concurrency > 0 && e != nil && e.liveCalls(now) >= p.concurrency && reason == ReasonNone {
		reason, retry = ReasonConcurrency, time.Second
	}

	if reason != ReasonNone {
		// Nothing is consumed; report the request bucket as it stands.
		d.Reason, d.RetryAfter = reason, retry
		if p.checkRequest {
			peek := gcra(cur.reqTAT, now, int64(p.requests.Burst), int64(p.requests.Rate), p.requests.Period.Seconds(), 0)
			d.Remaining, d.ResetAfter = peek.remaining, seconds(peek.resetAfter)
		}
		return d, nil
	}

	if e == nil {
		e = m.insert(req.Key, t, now)
	}
	e.lastSeen = now
	if p.checkRequest {
		e.reqTAT = reqRes.newTAT
		d.Remaining, d.ResetAfter = reqRes.remaining, durOrZero(seconds(reqRes.resetAfter))
	}
	if p.checkTokens {
		e.tokTAT = tokRes.newTAT
	}
	if p.checkBudget {
		e.budget.add(day, p.costMicro)
	}
	if p.checkGlobal {
		m.global.add(day, p.costMicro)
	}
	if p.concurrency > 0 {
		if e.calls == nil {
			e.calls = make(map[string]float64)
		}
		e.calls[p.callID] = now + p.leaseSecs
	}
	d.Allowed = true
	d.Reservation = p.reservation(req, day, m.backend)
	return d, nil
}

// Settle implements Limiter.
func (m *Memory) Settle(_ context.Context, res Reservation, used Usage) error {
	if err := res.validate(); err != nil {
		return fmt.Errorf("settling reservation: %w", err)
	}
	if err := used.validate(); err != nil {
		return fmt.Errorf("settling reservation: %w", err)
	}
	t := m.now()
	s := newSettlement(res, used, t)
	if s.empty() && res.CallID == "" {
		return nil
	}
	now := gcraSeconds(t)

	m.mu.Lock()
	defer m.mu.Unlock()
	if res.CallID != "" {
		if e := m.entries[res.Key]; e != nil {
			delete(e.calls, res.CallID)
		}
		if s.empty() {
			return nil
		}
	}
	if s.checkGlobal && s.budgetDelta != 0 {
		m.global.add(s.day, s.budgetDelta)
	}
	e := m.entries[res.Key]
	if e == nil {
		if s.tokenDelta <= 0 && (!s.checkBudget || s.budgetDelta <= 0) {
			return nil // only refunds to an identity whose state is already gone
		}
		e = m.insert(res.Key, t, now)
	}
	e.lastSeen = now
	if s.tokenDelta != 0 {
		e.tokTAT = gcraShift(e.tokTAT, now, tokenPeriod.Seconds()/float64(s.tpm), s.tokenDelta)
	}
	if s.checkBudget && s.budgetDelta != 0 {
		e.budget.add(s.day, s.budgetDelta)
	}
	return nil
}

// Extend implements Limiter.
func (m *Memory) Extend(_ context.Context, res *Reservation, moreTokens int64, moreUSD float64) (bool, error) {
	if res == nil {
		return false, fmt.Errorf("extending reservation: %w: nil reservation", ErrInvalidRequest)
	}
	t := m.now()
	x, err := newExtension(*res, moreTokens, moreUSD, t)
	if err != nil {
		return false, fmt.Errorf("extending reservation: %w", err)
	}
	if x.empty() {
		x.apply(res, moreUSD)
		return true, nil
	}
	now := gcraSeconds(t)

	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[res.Key]
	var cur memEntry
	if e != nil {
		cur = *e
	}
	var tok gcraResult
	if x.tokens > 0 {
		tok = gcra(cur.tokTAT, now, x.tpm, x.tpm, tokenPeriod.Seconds(), x.tokens)
		if !tok.allowed {
			return false, nil
		}
	}
	if x.costMicro > 0 {
		if x.budgetMicro > 0 && cur.budget.spent(x.day)+x.costMicro > x.budgetMicro {
			return false, nil
		}
		if x.globalMicro > 0 && m.global.spent(x.day)+x.costMicro > x.globalMicro {
			return false, nil
		}
	}
	if e == nil {
		e = m.insert(res.Key, t, now)
	}
	e.lastSeen = now
	if x.tokens > 0 {
		e.tokTAT = tok.newTAT
	}
	if x.costMicro > 0 {
		if x.budgetMicro > 0 {
			e.budget.add(x.day, x.costMicro)
		}
		if x.globalMicro > 0 {
			m.global.add(x.day, x.costMicro)
		}
	}
	x.apply(res, moreUSD)
	return true, nil
}

// Status implements Limiter. It reads without writing.
func (m *Memory) Status(_ context.Context, key string, policy Policy) (Status, error) {
	if err := validKey(key); err != nil {
		return Status{}, fmt.Errorf("reading quota: %w", err)
	}
	if err := policy.validate(); err != nil {
		return Status{}, fmt.Errorf("reading quota: %w", err)
	}
	t := m.now()
	now := gcraSeconds(t)
	day := utcDay(t)
	lim := policy.Requests.normalized()
	st := Status{
		Limit:           lim,
		TokensPerMinute: policy.TokensPerMinute,
		TokensRemaining: policy.TokensPerMinute,
		DailyBudgetUSD:  policy.DailyBudgetUSD,
		BudgetResetAt:   nextMidnight(t),
		Backend:         m.backend,
	}

	m.mu.Lock()
	var cur memEntry
	if e := m.entries[key]; e != nil {
		cur = *e
	}
	m.mu.Unlock()

	if !lim.IsZero() {
		peek := gcra(cur.reqTAT, now, int64(lim.Burst), int64(lim.Rate), lim.Period.Seconds(), 0)
		st.Remaining, st.ResetAfter = peek.remaining, durOrZero(seconds(peek.resetAfter))
	}
	if policy.TokensPerMinute > 0 {
		peek := gcra(cur.tokTAT, now, policy.TokensPerMinute, policy.TokensPerMinute, tokenPeriod.Seconds(), 0)
		st.TokensRemaining = int64(peek.remaining)
	}
	st.BudgetSpentUSD = fromMicro(cur.budget.spent(day))
	return st, nil
}

// Backend implements Limiter.
func (m *Memory) Backend() string { return m.backend }

// Close implements Limiter. Memory holds no resources besides its map.
func (m *Memory) Close() error { return nil }

// Len reports how many identities are tracked (for tests and debugging).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// insert adds an entry for key, making room first if the map is full.
// m.mu must be held.
func (m *Memory) insert(key string, t time.Time, now float64) *memEntry {
	if len(m.entries) >= m.maxKeys {
		m.sweep(t, now)
	}
	if len(m.entries) >= m.maxKeys {
		m.evictOne()
	}
	e := &memEntry{lastSeen: now}
	m.entries[key] = e
	return e
}

// evictSample is how many entries eviction compares: sampled LRU, the way
// Redis approximates it, without a list to maintain on every call.
const evictSample = 8

// evictOne drops the least recently seen of a few entries (map iteration
// order is random). An identity in active use is never the one dropped; an
// idle one that is dropped gets fresh counters, no more than a new IP would.
// m.mu must be held.
func (m *Memory) evictOne() {
	var victim string
	oldest, n := 0.0, 0
	for k, e := range m.entries {
		if n == 0 || e.lastSeen < oldest {
			victim, oldest = k, e.lastSeen
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(m.entries, victim)
}

// maybeSweep runs sweep when SweepInterval has passed. m.mu must be held.
// The sweep is inline rather than in a goroutine so the limiter owns no
// goroutine and follows the injected clock.
func (m *Memory) maybeSweep(t time.Time, now float64) {
	if t.Sub(m.lastSweep) < m.sweepEvery && t.After(m.lastSweep) {
		return
	}
	m.sweep(t, now)
}

// sweep drops identities whose buckets are full again and whose budget is
// from a past day or empty. m.mu must be held.
func (m *Memory) sweep(t time.Time, now float64) {
	m.lastSweep = t
	day := utcDay(t)
	for k, e := range m.entries {
		if e.reqTAT <= now && e.tokTAT <= now && e.budget.spent(day) == 0 && e.liveCalls(now) == 0 {
			delete(m.entries, k)
		}
	}
}
