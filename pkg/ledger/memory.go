package ledger

import (
	"context"
	"sync"
	"time"
)

// Memory is the in-process mode's ledger: one replica's counters, lost on
// restart.
type Memory struct {
	retention int
	now       func() time.Time

	mu   sync.Mutex
	days map[string]map[string]*memDay // day → identity →
}

type memDay struct {
	tier   string
	models map[string]*Counters
}

var _ Ledger = (*Memory)(nil)

// NewMemory returns an empty ledger; retentionDays <= 0 means
// DefaultRetentionDays, now defaults to time.Now.
func NewMemory(retentionDays int, now func() time.Time) *Memory {
	if retentionDays <= 0 {
		retentionDays = DefaultRetentionDays
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{retention: retentionDays, now: now, days: map[string]map[string]*memDay{}}
}

// Record implements Ledger: it records e at once and returns nil.
func (m *Memory) Record(e Entry) *Writes {
	d := day(e.Time)
	m.mu.Lock()
	defer m.mu.Unlock()
	ids, ok := m.days[d]
	if !ok {
		ids = map[string]*memDay{}
		m.days[d] = ids
		m.pruneLocked()
	}
	rec, ok := ids[e.Identity]
	if !ok {
		rec = &memDay{models: map[string]*Counters{}}
		ids[e.Identity] = rec
	}
	rec.tier = e.Tier
	c, ok := rec.models[e.Model]
	if !ok {
		c = &Counters{}
		rec.models[e.Model] = c
	}
	c.add(e.Counters)
	return nil
}

func (m *Memory) pruneLocked() {
	oldest := day(m.now().AddDate(0, 0, -m.retention))
	for d := range m.days {
		if d < oldest {
			delete(m.days, d)
		}
	}
}

// Send implements Ledger (nothing to send).
func (m *Memory) Send(context.Context, *Writes) error { return nil }

// Rows implements Ledger.
func (m *Memory) Rows(_ context.Context, q Query) ([]Row, error) {
	days, err := q.Days()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var rows []Row
	for _, d := range days {
		for id, rec := range m.days[d] {
			if q.Identity != "" && id != q.Identity {
				continue
			}
			for model, c := range rec.models {
				rows = append(rows, Row{Day: d, Identity: id, Model: model, Tier: rec.tier, Counters: *c, CostUSD: float64(c.CostMicro) / 1e6})
			}
		}
	}
	return rows, nil
}

// Backend implements Ledger.
func (m *Memory) Backend() string { return BackendMemory }

// Retention implements Ledger.
func (m *Memory) Retention() int { return m.retention }
