package ratelimit

import (
	"sync"
	"time"
)

// maxKnownSpends bounds the remembered identities; past it the memory
// starts afresh (the fallback then knows less, as at start-up).
const maxKnownSpends = 100_000

// knownSpend is what the shared backend last said was spent today, per
// identity and in total: the floor the local fallback starts from, so a
// replica that loses Redis does not hand out budget the shared books have
// already spent. It only rises within a day.
type knownSpend struct {
	mu       sync.Mutex
	day      string
	identity map[string]float64
	global   float64
}

// note records d's spends for key, on the reservation's day (now's for a
// refusal, which reserves nothing).
func (k *knownSpend) note(key string, d *Decision, now func() time.Time) {
	if d.BudgetSpentUSD <= 0 && d.GlobalSpentUSD <= 0 {
		return
	}
	day := d.Reservation.Day
	if day == "" {
		day = utcDay(now())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if day != k.day {
		if day < k.day {
			return // a late answer from yesterday
		}
		k.day, k.identity, k.global = day, nil, 0
	}
	if d.BudgetSpentUSD > 0 {
		if k.identity == nil || len(k.identity) >= maxKnownSpends {
			k.identity = make(map[string]float64)
		}
		k.identity[key] = max(k.identity[key], d.BudgetSpentUSD)
	}
	k.global = max(k.global, d.GlobalSpentUSD)
}

// deduct lowers p's budgets by what is known to be spent of them on day
// (to no less than a micro-dollar, so nothing that costs is admitted).
func (k *knownSpend) deduct(key, day string, p Policy) Policy {
	k.mu.Lock()
	defer k.mu.Unlock()
	if day != k.day {
		return p
	}
	if s := k.identity[key]; s > 0 && p.DailyBudgetUSD > 0 {
		p.DailyBudgetUSD = max(1e-6, p.DailyBudgetUSD-s)
	}
	if k.global > 0 && p.GlobalDailyUSD > 0 {
		p.GlobalDailyUSD = max(1e-6, p.GlobalDailyUSD-k.global)
	}
	return p
}
