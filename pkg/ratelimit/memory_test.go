package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(t *testing.T, clock *testClock) Limiter {
		m, err := NewMemory(MemoryOptions{Now: clock.Now})
		require.NoError(t, err)
		require.Equal(t, BackendMemory, m.Backend())
		return m
	})
}

func TestMemoryBudgetRollsOverAtUTCMidnight(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(time.Date(2026, 3, 9, 23, 59, 0, 0, time.UTC))
	m, err := NewMemory(MemoryOptions{Now: clock.Now})
	require.NoError(t, err)
	pol := Policy{DailyBudgetUSD: 2, GlobalDailyUSD: 3}

	d, err := m.Admit(ctx, Request{Key: "sub:a", Policy: pol, CostUSD: 2})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, "2026-03-09", d.Reservation.Day)

	d, err = m.Admit(ctx, Request{Key: "sub:a", Policy: pol, CostUSD: 0.01})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, ReasonBudget, d.Reason)
	require.Equal(t, time.Minute, d.RetryAfter, "Retry-After points at midnight")

	st, err := m.Status(ctx, "sub:a", pol)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), st.BudgetResetAt)

	clock.Advance(time.Minute)
	d, err = m.Admit(ctx, Request{Key: "sub:a", Policy: pol, CostUSD: 2})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, "2026-03-10", d.Reservation.Day)

	// The global cap rolled over too: 2 of today's 3 are used.
	d, err = m.Admit(ctx, Request{Key: "sub:b", Policy: pol, CostUSD: 1.5})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, ReasonGlobalBudget, d.Reason)
	require.Equal(t, 24*time.Hour, d.RetryAfter)
}

func TestMemoryRetryAfterIsExactWithFakeClock(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	m, err := NewMemory(MemoryOptions{Now: clock.Now})
	require.NoError(t, err)
	pol := Policy{Requests: Limit{Rate: 2, Period: 10 * time.Second, Burst: 2}}
	for range 2 {
		d, err := m.Admit(ctx, Request{Key: "k", Policy: pol})
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	d, err := m.Admit(ctx, Request{Key: "k", Policy: pol})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, 5*time.Second, d.RetryAfter)
	require.Equal(t, 10*time.Second, d.ResetAfter)

	clock.Advance(4999 * time.Millisecond)
	d, err = m.Admit(ctx, Request{Key: "k", Policy: pol})
	require.NoError(t, err)
	require.False(t, d.Allowed, "one millisecond early")
	clock.Advance(time.Millisecond)
	d, err = m.Admit(ctx, Request{Key: "k", Policy: pol})
	require.NoError(t, err)
	require.True(t, d.Allowed, "exactly at RetryAfter")
	require.Equal(t, 0, d.Remaining)
}

func TestMemoryStaysBoundedUnderSpoofedIdentities(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	m, err := NewMemory(MemoryOptions{Now: clock.Now, MaxKeys: 100})
	require.NoError(t, err)
	pol := Policy{Requests: perMinute(30), DailyBudgetUSD: 1}
	for i := range 5000 {
		d, err := m.Admit(ctx, Request{Key: fmt.Sprintf("ip:198.51.%d.%d", i/256, i%256), Policy: pol, CostUSD: 0.01})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.LessOrEqual(t, m.Len(), 100)
	}
	// A caller hammering one identity still gets limited while the flood runs.
	allowed := 0
	for i := range 40 {
		clock.Advance(time.Millisecond)
		d, err := m.Admit(ctx, Request{Key: "sub:victim", Policy: pol})
		require.NoError(t, err)
		if d.Allowed {
			allowed++
		}
		_, err = m.Admit(ctx, Request{Key: fmt.Sprintf("ip:203.0.113.%d", i), Policy: pol})
		require.NoError(t, err)
	}
	require.Equal(t, 30, allowed)
}

func TestMemorySweepsIdleIdentities(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	m, err := NewMemory(MemoryOptions{Now: clock.Now, SweepInterval: time.Minute})
	require.NoError(t, err)
	for i := range 1000 {
		_, err := m.Admit(ctx, Request{Key: fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256), Policy: Policy{Requests: perMinute(30)}})
		require.NoError(t, err)
	}
	// One identity with spend today must survive the sweep; budgets are per day.
	_, err = m.Admit(ctx, Request{Key: "sub:spender", Policy: Policy{DailyBudgetUSD: 5}, CostUSD: 1})
	require.NoError(t, err)
	require.Equal(t, 1001, m.Len())

	clock.Advance(2 * time.Minute)
	_, err = m.Admit(ctx, Request{Key: "sub:new", Policy: Policy{Requests: perMinute(30)}})
	require.NoError(t, err)
	require.Equal(t, 2, m.Len())
	st, err := m.Status(ctx, "sub:spender", Policy{DailyBudgetUSD: 5})
	require.NoError(t, err)
	require.Equal(t, 1.0, st.BudgetSpentUSD)
}

func TestNewMemoryRejectsBadOptions(t *testing.T) {
	_, err := NewMemory(MemoryOptions{MaxKeys: -1})
	require.ErrorContains(t, err, "MaxKeys")
	_, err = NewMemory(MemoryOptions{SweepInterval: -time.Second})
	require.ErrorContains(t, err, "SweepInterval")
}

func TestGCRAMatchesRedisRateArithmetic(t *testing.T) {
	// Values worked through redis_rate's Lua by hand: 10 per 60s, burst 10.
	now := 1000.0
	r := gcra(0, now, 10, 10, 60, 1)
	require.True(t, r.allowed)
	require.Equal(t, 9, r.remaining)
	require.Equal(t, -1.0, r.retryAfter)
	require.InDelta(t, 6.0, r.resetAfter, 1e-9)

	tat := now + 60 // bucket drained
	r = gcra(tat, now, 10, 10, 60, 1)
	require.False(t, r.allowed)
	require.InDelta(t, 6.0, r.retryAfter, 1e-9)
	require.InDelta(t, 60.0, r.resetAfter, 1e-9)

	r = gcra(tat, now, 10, 10, 60, 0)
	require.True(t, r.allowed, "a peek never fails")
	require.Equal(t, 0, r.remaining)

	// Cost above burst can never pass.
	r = gcra(0, now, 10, 10, 60, 11)
	require.False(t, r.allowed)
}
