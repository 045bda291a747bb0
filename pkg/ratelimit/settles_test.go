package ratelimit

import (
	"testing"
	"time"
)

// Settles must be false exactly when Settle has nothing to reconcile,
// whatever was reserved and used: callers skip Settle on its word.
func TestSettlesAgreesWithSettlement(t *testing.T) {
	policies := []Policy{
		{Requests: Limit{Rate: 10, Burst: 10, Period: time.Minute}},
		{TokensPerMinute: 1000},
		{DailyBudgetUSD: 1},
		{GlobalDailyUSD: 5},
		{DailyBudgetUSD: 0.0000001}, // rounds to zero micro-dollars
		{TokensPerMinute: 1000, DailyBudgetUSD: 1, GlobalDailyUSD: 5},
	}
	uses := []Usage{{}, {Tokens: 500, CostUSD: 0.02}, {Tokens: 1}}
	reserved := []Reservation{{}, {Tokens: 800, CostUSD: 0.5}}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, p := range policies {
		for _, r := range reserved {
			r.Policy, r.Key, r.Backend = p, "ip:203.0.113.9", BackendRedis
			for _, u := range uses {
				s := newSettlement(r, u, now)
				if !r.Settles() && !s.empty() {
					t.Errorf("policy %+v, reserved %d/%.2f, used %+v: Settles() = false but the settlement is not empty", p, r.Tokens, r.CostUSD, u)
				}
			}
		}
	}
	if (Reservation{Policy: Policy{Requests: Limit{Rate: 1, Burst: 1, Period: time.Second}}}).Settles() {
		t.Error("a requests-only reservation should not need settling")
	}
	if !(Reservation{Policy: Policy{TokensPerMinute: 1}}).Settles() {
		t.Error("a token reservation must be settled")
	}
}
