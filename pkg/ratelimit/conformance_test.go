package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// limiterFactory returns a fresh limiter whose budget days follow clock.
// Each call must be isolated from the others (own keys or own store).
type limiterFactory func(t *testing.T, clock *testClock) Limiter

func perMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: n} }

// retrySeconds is how the gateway turns RetryAfter into a Retry-After header.
func retrySeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// runConformance is the one behaviour suite every Limiter passes: Memory,
// Redis (single server, Cluster-safe mode, real Cluster) and Resilient.
func runConformance(t *testing.T, newLimiter limiterFactory) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, lim Limiter, clock *testClock)
	}{
		{"sequential exactness: 25 calls at 20/min give remaining 19..0 then 5 refusals", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(20)}
			for i := range 20 {
				d, err := lim.Admit(ctx, Request{Key: "sub:alice", Policy: pol})
				require.NoError(t, err)
				require.True(t, d.Allowed, "call %d", i+1)
				require.Equal(t, 19-i, d.Remaining, "call %d", i+1)
				require.Equal(t, pol.Requests, d.Limit)
				require.Zero(t, d.RetryAfter)
				require.InDelta(t, (3 * time.Duration(i+1) * time.Second).Seconds(), d.ResetAfter.Seconds(), 1.5)
			}
			for i := range 5 {
				d, err := lim.Admit(ctx, Request{Key: "sub:alice", Policy: pol})
				require.NoError(t, err)
				require.False(t, d.Allowed, "call %d", 21+i)
				require.Equal(t, ReasonRequests, d.Reason)
				require.Equal(t, 0, d.Remaining)
				require.False(t, d.Unsatisfiable)
				// One slot frees every 60s/20 = 3s.
				require.Greater(t, d.RetryAfter, 1500*time.Millisecond)
				require.LessOrEqual(t, d.RetryAfter, 3*time.Second)
				require.GreaterOrEqual(t, retrySeconds(d.RetryAfter), 1)
				require.Equal(t, Reservation{}, d.Reservation)
			}
		}},
		{"concurrent exactness: 50 goroutines at 20/min admit exactly 20", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(20)}
			allowed, denied := admitConcurrently(t, lim, 50, func(int) Request { return Request{Key: "ip:203.0.113.9", Policy: pol} })
			require.Equal(t, 20, allowed)
			require.Equal(t, 30, denied)
		}},
		{"a full bucket resets after ResetAfter", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: Limit{Rate: 5, Period: time.Second, Burst: 5}}
			var last Decision
			for range 5 {
				d, err := lim.Admit(ctx, Request{Key: "sub:bob", Policy: pol})
				require.NoError(t, err)
				require.True(t, d.Allowed)
				last = d
			}
			d, err := lim.Admit(ctx, Request{Key: "sub:bob", Policy: pol})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.LessOrEqual(t, last.ResetAfter, time.Second)
			time.Sleep(last.ResetAfter + 20*time.Millisecond)
			for i := range 5 {
				d, err := lim.Admit(ctx, Request{Key: "sub:bob", Policy: pol})
				require.NoError(t, err)
				require.True(t, d.Allowed, "call %d after reset", i+1)
			}
		}},
		{"status never consumes", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(20), TokensPerMinute: 6000, DailyBudgetUSD: 5}
			for range 3 {
				d, err := lim.Admit(ctx, Request{Key: "sub:carol", Policy: pol, Tokens: 100, CostUSD: 0.25})
				require.NoError(t, err)
				require.True(t, d.Allowed)
			}
			for range 10 {
				st, err := lim.Status(ctx, "sub:carol", pol)
				require.NoError(t, err)
				require.Equal(t, 17, st.Remaining)
				require.Equal(t, pol.Requests, st.Limit)
				require.InDelta(t, 5700, st.TokensRemaining, 100) // refills at 100/s
				require.Equal(t, int64(6000), st.TokensPerMinute)
				require.InDelta(t, 0.75, st.BudgetSpentUSD, 1e-9)
				require.Equal(t, 5.0, st.DailyBudgetUSD)
				require.Equal(t, lim.Backend(), st.Backend)
				require.True(t, st.BudgetResetAt.After(time.Now()))
				require.Zero(t, st.BudgetResetAt.Sub(st.BudgetResetAt.Truncate(24*time.Hour)), "resets at UTC midnight")
			}
			d, err := lim.Admit(ctx, Request{Key: "sub:carol", Policy: pol})
			require.NoError(t, err)
			require.Equal(t, 16, d.Remaining)
		}},
		{"status of an unknown caller shows the full quota", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(30), TokensPerMinute: 1000, DailyBudgetUSD: 2}
			st, err := lim.Status(ctx, "sub:nobody", pol)
			require.NoError(t, err)
			require.Equal(t, 30, st.Remaining)
			require.Zero(t, st.ResetAfter)
			require.Equal(t, int64(1000), st.TokensRemaining)
			require.Zero(t, st.BudgetSpentUSD)
		}},
		{"separate keys are independent", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(3)}
			for range 3 {
				d, err := lim.Admit(ctx, Request{Key: "sub:a", Policy: pol})
				require.NoError(t, err)
				require.True(t, d.Allowed)
			}
			d, err := lim.Admit(ctx, Request{Key: "sub:a", Policy: pol})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			for _, key := range []string{"sub:b", "ip:2001:db8::/64", "sub:{odd}key%"} {
				d, err = lim.Admit(ctx, Request{Key: key, Policy: pol})
				require.NoError(t, err)
				require.True(t, d.Allowed, key)
				require.Equal(t, 2, d.Remaining, key)
			}
		}},
		{"tokens are reserved up front and refunded at settle", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(100), TokensPerMinute: 1000}
			first, err := lim.Admit(ctx, Request{Key: "sub:dave", Policy: pol, Tokens: 800})
			require.NoError(t, err)
			require.True(t, first.Allowed)
			require.Equal(t, int64(800), first.Reservation.Tokens)
			require.Equal(t, lim.Backend(), first.Reservation.Backend)

			d, err := lim.Admit(ctx, Request{Key: "sub:dave", Policy: pol, Tokens: 800})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, ReasonTokens, d.Reason)
			require.False(t, d.Unsatisfiable)
			require.Greater(t, d.RetryAfter, 30*time.Second) // 600 tokens at 1000/min
			require.Equal(t, 99, d.Remaining, "a token refusal does not use up a request")

			require.NoError(t, lim.Settle(ctx, first.Reservation, Usage{Tokens: 100}))
			st, err := lim.Status(ctx, "sub:dave", pol)
			require.NoError(t, err)
			require.InDelta(t, 900, st.TokensRemaining, 30)

			d, err = lim.Admit(ctx, Request{Key: "sub:dave", Policy: pol, Tokens: 800})
			require.NoError(t, err)
			require.True(t, d.Allowed, "the refund made room")
		}},
		{"usage above the estimate is charged", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{TokensPerMinute: 1000}
			d, err := lim.Admit(ctx, Request{Key: "sub:erin", Policy: pol, Tokens: 100})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			require.NoError(t, lim.Settle(ctx, d.Reservation, Usage{Tokens: 700}))
			st, err := lim.Status(ctx, "sub:erin", pol)
			require.NoError(t, err)
			require.InDelta(t, 300, st.TokensRemaining, 30)
			d, err = lim.Admit(ctx, Request{Key: "sub:erin", Policy: pol, Tokens: 500})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, ReasonTokens, d.Reason)
		}},
		{"a request larger than a whole limit is unsatisfiable", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(10), TokensPerMinute: 1000, DailyBudgetUSD: 1, GlobalDailyUSD: 100}
			for _, tc := range []struct {
				req    Request
				reason Reason
			}{
				{Request{Key: "sub:f", Policy: pol, Tokens: 1001}, ReasonTokens},
				{Request{Key: "sub:f", Policy: pol, CostUSD: 1.5}, ReasonBudget},
				{Request{Key: "sub:f", Policy: Policy{GlobalDailyUSD: 1}, CostUSD: 2}, ReasonGlobalBudget},
			} {
				d, err := lim.Admit(ctx, tc.req)
				require.NoError(t, err)
				require.False(t, d.Allowed)
				require.True(t, d.Unsatisfiable)
				require.Equal(t, tc.reason, d.Reason)
			}
			st, err := lim.Status(ctx, "sub:f", pol)
			require.NoError(t, err)
			require.Equal(t, 10, st.Remaining, "nothing consumed")
		}},
		{"budget for 10 calls admits at most 10 of 20 concurrent", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(1000), DailyBudgetUSD: 1}
			var mu sync.Mutex
			var refusals []Decision
			allowed, _ := admitConcurrentlyObserve(t, lim, 20, func(int) Request {
				return Request{Key: "sub:gina", Policy: pol, CostUSD: 0.1}
			}, func(d Decision) {
				if !d.Allowed {
					mu.Lock()
					refusals = append(refusals, d)
					mu.Unlock()
				}
			})
			require.Equal(t, 10, allowed)
			for _, d := range refusals {
				require.Equal(t, ReasonBudget, d.Reason)
				require.GreaterOrEqual(t, d.RetryAfter, time.Second)
				require.LessOrEqual(t, d.RetryAfter, 24*time.Hour)
			}
			st, err := lim.Status(ctx, "sub:gina", pol)
			require.NoError(t, err)
			require.InDelta(t, 1.0, st.BudgetSpentUSD, 1e-9)
		}},
		{"settle charges what an aborted call used", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{DailyBudgetUSD: 1}
			d, err := lim.Admit(ctx, Request{Key: "sub:hal", Policy: pol, CostUSD: 0.5})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			spent := func() float64 {
				st, err := lim.Status(ctx, "sub:hal", pol)
				require.NoError(t, err)
				return st.BudgetSpentUSD
			}
			require.InDelta(t, 0.5, spent(), 1e-9, "reservation counts as spent")
			require.NoError(t, lim.Settle(ctx, d.Reservation, Usage{Tokens: 300, CostUSD: 0.3}))
			require.InDelta(t, 0.3, spent(), 1e-9, "refund of the unused part")

			d, err = lim.Admit(ctx, Request{Key: "sub:hal", Policy: pol, CostUSD: 0.2})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			require.NoError(t, lim.Settle(ctx, d.Reservation, Usage{CostUSD: 0.4}))
			require.InDelta(t, 0.7, spent(), 1e-9, "overrun charged")

			d, err = lim.Admit(ctx, Request{Key: "sub:hal", Policy: pol, CostUSD: 0.4})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, ReasonBudget, d.Reason)
		}},
		{"refunds never take spend below zero", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{DailyBudgetUSD: 1, GlobalDailyUSD: 10, TokensPerMinute: 1000}
			res := Reservation{Key: "sub:ivy", Policy: pol, Tokens: 900, CostUSD: 0.9, Backend: lim.Backend()}
			require.NoError(t, lim.Settle(ctx, res, Usage{}))
			st, err := lim.Status(ctx, "sub:ivy", pol)
			require.NoError(t, err)
			require.Zero(t, st.BudgetSpentUSD)
			require.Equal(t, int64(1000), st.TokensRemaining)
			d, err := lim.Admit(ctx, Request{Key: "sub:ivy", Policy: pol, Tokens: 1000, CostUSD: 1})
			require.NoError(t, err)
			require.True(t, d.Allowed, "a refund without a reservation grants nothing extra, and takes nothing either")
			d, err = lim.Admit(ctx, Request{Key: "sub:ivy", Policy: pol, Tokens: 1, CostUSD: 0.01})
			require.NoError(t, err)
			require.False(t, d.Allowed)
		}},
		{"global cap holds across identities", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(100), DailyBudgetUSD: 10, GlobalDailyUSD: 1}
			a, err := lim.Admit(ctx, Request{Key: "sub:a", Policy: pol, CostUSD: 0.4})
			require.NoError(t, err)
			require.True(t, a.Allowed)
			b, err := lim.Admit(ctx, Request{Key: "sub:b", Policy: pol, CostUSD: 0.4})
			require.NoError(t, err)
			require.True(t, b.Allowed)
			c, err := lim.Admit(ctx, Request{Key: "sub:c", Policy: pol, CostUSD: 0.4})
			require.NoError(t, err)
			require.False(t, c.Allowed)
			require.Equal(t, ReasonGlobalBudget, c.Reason)
			require.GreaterOrEqual(t, c.RetryAfter, time.Second)

			st, err := lim.Status(ctx, "sub:c", pol)
			require.NoError(t, err)
			require.Equal(t, 100, st.Remaining, "the refused call consumed no request")
			require.Zero(t, st.BudgetSpentUSD, "nor budget")

			require.NoError(t, lim.Settle(ctx, a.Reservation, Usage{CostUSD: 0.1}))
			c, err = lim.Admit(ctx, Request{Key: "sub:c", Policy: pol, CostUSD: 0.4})
			require.NoError(t, err)
			require.True(t, c.Allowed, "the refund to a freed global room")
		}},
		{"global cap: 20 concurrent callers over 20 identities never overspend", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{GlobalDailyUSD: 1}
			allowed, _ := admitConcurrently(t, lim, 20, func(i int) Request {
				return Request{Key: "sub:g" + string(rune('a'+i)), Policy: pol, CostUSD: 0.2}
			})
			require.Equal(t, 5, allowed)
		}},
		{"budgets start afresh on the next UTC day", func(t *testing.T, lim Limiter, clock *testClock) {
			pol := Policy{DailyBudgetUSD: 1, GlobalDailyUSD: 3}
			first, err := lim.Admit(ctx, Request{Key: "sub:jo", Policy: pol, CostUSD: 1})
			require.NoError(t, err)
			require.True(t, first.Allowed)
			require.Equal(t, utcDay(clock.Now()), first.Reservation.Day)
			d, err := lim.Admit(ctx, Request{Key: "sub:jo", Policy: pol, CostUSD: 0.1})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, ReasonBudget, d.Reason)
			require.LessOrEqual(t, d.RetryAfter, time.Until(nextMidnight(clock.Now()))+time.Second)

			clock.Advance(24 * time.Hour)
			d, err = lim.Admit(ctx, Request{Key: "sub:jo", Policy: pol, CostUSD: 0.6})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			// Yesterday's settlement changes yesterday, not today.
			require.NoError(t, lim.Settle(ctx, first.Reservation, Usage{CostUSD: 0}))
			st, err := lim.Status(ctx, "sub:jo", pol)
			require.NoError(t, err)
			require.InDelta(t, 0.6, st.BudgetSpentUSD, 1e-9)
		}},
		{"no limits configured admits everything", func(t *testing.T, lim Limiter, _ *testClock) {
			for range 50 {
				d, err := lim.Admit(ctx, Request{Key: "sub:free", Tokens: 10_000, CostUSD: 5})
				require.NoError(t, err)
				require.True(t, d.Allowed)
				require.NoError(t, lim.Settle(ctx, d.Reservation, Usage{Tokens: 10_000, CostUSD: 5}))
			}
		}},
		{"extend grows a reservation until the budget is spent, then refuses without change", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{DailyBudgetUSD: 1}
			d, err := lim.Admit(ctx, Request{Key: "sub:ext", Policy: pol, CostUSD: 0.25})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			res := d.Reservation
			for i := range 3 {
				ok, err := lim.Extend(ctx, &res, 0, 0.25)
				require.NoError(t, err)
				require.True(t, ok, "extension %d", i+1)
			}
			require.InDelta(t, 1.0, res.CostUSD, 1e-9)
			before := res
			ok, err := lim.Extend(ctx, &res, 0, 0.000001)
			require.NoError(t, err)
			require.False(t, ok, "the budget is spent")
			require.Equal(t, before, res, "a refused extension leaves the reservation as it was")
			st, err := lim.Status(ctx, "sub:ext", pol)
			require.NoError(t, err)
			require.InDelta(t, 1.0, st.BudgetSpentUSD, 1e-9)
			// Settling the grown reservation refunds against the whole.
			require.NoError(t, lim.Settle(ctx, res, Usage{CostUSD: 0.4}))
			st, err = lim.Status(ctx, "sub:ext", pol)
			require.NoError(t, err)
			require.InDelta(t, 0.4, st.BudgetSpentUSD, 1e-9)
		}},
		{"extend checks tokens per minute and the global cap", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{TokensPerMinute: 1000, GlobalDailyUSD: 2}
			d, err := lim.Admit(ctx, Request{Key: "sub:ext-a", Policy: pol, Tokens: 600, CostUSD: 1})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			res := d.Reservation
			ok, err := lim.Extend(ctx, &res, 500, 0)
			require.NoError(t, err)
			require.False(t, ok, "600+500 tokens do not fit 1000/min")
			ok, err = lim.Extend(ctx, &res, 300, 0.5)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, int64(900), res.Tokens)
			other, err := lim.Admit(ctx, Request{Key: "sub:ext-b", Policy: pol, Tokens: 10, CostUSD: 0.5})
			require.NoError(t, err)
			require.True(t, other.Allowed)
			ores := other.Reservation
			ok, err = lim.Extend(ctx, &ores, 0, 0.01)
			require.NoError(t, err)
			require.False(t, ok, "the global cap is spent by both identities together")
			require.NoError(t, lim.Settle(ctx, res, Usage{Tokens: 900, CostUSD: 1.5}))
			require.NoError(t, lim.Settle(ctx, ores, Usage{Tokens: 10, CostUSD: 0.5}))
		}},
		{"concurrent extensions never overspend the budget", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{DailyBudgetUSD: 1}
			var ress []Reservation
			for range 4 {
				d, err := lim.Admit(ctx, Request{Key: "sub:ext-c", Policy: pol, CostUSD: 0.1})
				require.NoError(t, err)
				require.True(t, d.Allowed)
				ress = append(ress, d.Reservation)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			granted := 0
			for i := range ress {
				wg.Add(1)
				go func(res *Reservation) {
					defer wg.Done()
					for range 10 {
						ok, err := lim.Extend(ctx, res, 0, 0.05)
						if err != nil || !ok {
							return
						}
						mu.Lock()
						granted++
						mu.Unlock()
					}
				}(&ress[i])
			}
			wg.Wait()
			require.Equal(t, 12, granted, "0.4 reserved + 12 × 0.05 = the whole $1")
			st, err := lim.Status(ctx, "sub:ext-c", pol)
			require.NoError(t, err)
			require.InDelta(t, 1.0, st.BudgetSpentUSD, 1e-9)
		}},
		{"extend of nothing needs no limit", func(t *testing.T, lim Limiter, _ *testClock) {
			d, err := lim.Admit(ctx, Request{Key: "sub:ext-d", Policy: Policy{Requests: perMinute(5)}})
			require.NoError(t, err)
			res := d.Reservation
			ok, err := lim.Extend(ctx, &res, 100, 1)
			require.NoError(t, err)
			require.True(t, ok)
			_, err = lim.Extend(ctx, &res, -1, 0)
			require.ErrorIs(t, err, ErrInvalidRequest)
			_, err = lim.Extend(ctx, nil, 1, 0)
			require.ErrorIs(t, err, ErrInvalidRequest)
		}},
		{"concurrent calls are capped until a settle gives a lease back", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(100), MaxConcurrent: 3}
			var held []Reservation
			for i := range 3 {
				d, err := lim.Admit(ctx, Request{Key: "sub:conc", Policy: pol, CallID: fmt.Sprintf("call-%d", i)})
				require.NoError(t, err)
				require.True(t, d.Allowed, "call %d", i+1)
				require.True(t, d.Reservation.Settles(), "a lease must be given back")
				held = append(held, d.Reservation)
			}
			d, err := lim.Admit(ctx, Request{Key: "sub:conc", Policy: pol, CallID: "call-4"})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			require.Equal(t, ReasonConcurrency, d.Reason)
			require.Equal(t, time.Second, d.RetryAfter)
			other, err := lim.Admit(ctx, Request{Key: "sub:conc-other", Policy: pol, CallID: "call-4"})
			require.NoError(t, err)
			require.True(t, other.Allowed, "another identity has its own slots")
			require.NoError(t, lim.Settle(ctx, held[0], Usage{}))
			d, err = lim.Admit(ctx, Request{Key: "sub:conc", Policy: pol, CallID: "call-5"})
			require.NoError(t, err)
			require.True(t, d.Allowed, "the settled call's slot is free again")
			_, err = lim.Admit(ctx, Request{Key: "sub:conc", Policy: pol})
			require.ErrorIs(t, err, ErrInvalidRequest, "a cap needs a call id")
		}},
		{"a lease whose settle never comes expires", func(t *testing.T, lim Limiter, clock *testClock) {
			pol := Policy{MaxConcurrent: 1}
			d, err := lim.Admit(ctx, Request{Key: "sub:lease", Policy: pol, CallID: "dead-replica", Lease: time.Second})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			d, err = lim.Admit(ctx, Request{Key: "sub:lease", Policy: pol, CallID: "next", Lease: time.Second})
			require.NoError(t, err)
			require.False(t, d.Allowed)
			clock.Advance(1500 * time.Millisecond)
			require.Eventually(t, func() bool {
				d, err := lim.Admit(ctx, Request{Key: "sub:lease", Policy: pol, CallID: "next", Lease: time.Second})
				return err == nil && d.Allowed
			}, 3*time.Second, 50*time.Millisecond)
		}},
		{"bad input is refused with ErrInvalidRequest", func(t *testing.T, lim Limiter, _ *testClock) {
			pol := Policy{Requests: perMinute(10)}
			for name, req := range map[string]Request{
				"empty key":       {Policy: pol},
				"long key":        {Key: string(make([]byte, maxKeyLen+1)), Policy: pol},
				"negative tokens": {Key: "k", Policy: pol, Tokens: -1},
				"NaN cost":        {Key: "k", Policy: pol, CostUSD: math.NaN()},
				"negative cost":   {Key: "k", Policy: pol, CostUSD: -0.1},
				"negative budget": {Key: "k", Policy: Policy{DailyBudgetUSD: -1}},
				"negative rate":   {Key: "k", Policy: Policy{Requests: Limit{Rate: -1, Period: time.Second}}},
			} {
				_, err := lim.Admit(ctx, req)
				require.ErrorIs(t, err, ErrInvalidRequest, name)
			}
			err := lim.Settle(ctx, Reservation{Key: "k", Backend: lim.Backend()}, Usage{Tokens: -5})
			require.ErrorIs(t, err, ErrInvalidRequest)
			err = lim.Settle(ctx, Reservation{Key: "k", Day: "yesterday", Backend: lim.Backend()}, Usage{})
			require.ErrorIs(t, err, ErrInvalidRequest)
			_, err = lim.Status(ctx, "", pol)
			require.ErrorIs(t, err, ErrInvalidRequest)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{}
			lim := newLimiter(t, clock)
			t.Cleanup(func() { require.NoError(t, lim.Close()) })
			tc.run(t, lim, clock)
		})
	}
}

// admitConcurrently fires n Admits at once and counts the outcomes.
func admitConcurrently(t *testing.T, lim Limiter, n int, req func(i int) Request) (allowed, denied int) {
	return admitConcurrentlyObserve(t, lim, n, req, func(Decision) {})
}

func admitConcurrentlyObserve(t *testing.T, lim Limiter, n int, req func(i int) Request, see func(Decision)) (allowed, denied int) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		start = make(chan struct{})
		errs  []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := lim.Admit(context.Background(), req(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			see(d)
			if d.Allowed {
				allowed++
			} else {
				denied++
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	return allowed, denied
}
