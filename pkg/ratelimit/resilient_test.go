package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestResilient(t *testing.T, addr string, opts ResilientOptions) *Resilient {
	t.Helper()
	r, err := NewResilient(newTestRedis(t, newTestClient(t, addr), time.Now), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// Redis killed: the local share limits, no error reaches the caller, the
// metric hooks see it, and shared limiting resumes by itself on restart.
func TestResilientDegradesToLocalShareAndRecovers(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	obs := &recObserver{}
	r := newTestResilient(t, srv.Addr, ResilientOptions{LocalShareDivisor: 2, ProbeInterval: 100 * time.Millisecond, Observer: obs})
	pol := Policy{Requests: perMinute(10), DailyBudgetUSD: 1}

	d, err := r.Admit(ctx, Request{Key: "sub:k", Policy: pol})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, BackendRedis, d.Backend)
	require.Equal(t, 9, d.Remaining)

	srv.Stop()
	allowed := 0
	for i := range 20 {
		start := time.Now()
		d, err := r.Admit(ctx, Request{Key: "sub:k", Policy: pol})
		require.NoError(t, err, "call %d", i)
		require.Less(t, time.Since(start), 250*time.Millisecond)
		require.Equal(t, BackendDegraded, d.Backend)
		if d.Allowed {
			allowed++
			require.Equal(t, BackendDegraded, d.Reservation.Backend)
			require.Equal(t, Limit{Rate: 5, Period: time.Minute, Burst: 5}, d.Limit, "the replica's share")
		} else {
			require.Equal(t, ReasonRequests, d.Reason)
			require.GreaterOrEqual(t, retrySeconds(d.RetryAfter), 1)
		}
	}
	require.Equal(t, 5, allowed, "10/min split over 2 replicas")
	require.Equal(t, BackendDegraded, r.Backend())
	st, err := r.Status(ctx, "sub:k", pol)
	require.NoError(t, err)
	require.Equal(t, BackendDegraded, st.Backend)
	require.Equal(t, 0, st.Remaining)

	// Budgets are shared out too: 1 USD / 2 replicas.
	d, err = r.Admit(ctx, Request{Key: "sub:money", Policy: pol, CostUSD: 0.6})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.True(t, d.Unsatisfiable, "0.6 is above this replica's 0.5 share")
	d, err = r.Admit(ctx, Request{Key: "sub:money", Policy: pol, CostUSD: 0.4})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.NoError(t, r.Settle(ctx, d.Reservation, Usage{CostUSD: 0.1}), "settles with the fallback")
	st, err = r.Status(ctx, "sub:money", pol)
	require.NoError(t, err)
	require.InDelta(t, 0.1, st.BudgetSpentUSD, 1e-9)

	ups, decisions := obs.snapshot()
	require.Equal(t, []bool{true, false}, ups)
	require.Equal(t, map[string]int{"local/allowed": 6, "local/denied": 16}, decisions)

	srv.Restart()
	require.Eventually(t, func() bool { return r.Backend() == BackendRedis }, 5*time.Second, 20*time.Millisecond)
	d, err = r.Admit(ctx, Request{Key: "sub:k", Policy: pol})
	require.NoError(t, err)
	require.Equal(t, BackendRedis, d.Backend)
	require.True(t, d.Allowed)
	require.Equal(t, 9, d.Remaining, "the restarted Redis is empty")
	ups, _ = obs.snapshot()
	require.Equal(t, []bool{true, false, true}, ups)
}

// A Redis that answers too slowly costs a request at most the timeout.
func TestResilientSlowRedis(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	for _, tc := range []struct {
		mode    FailureMode
		backend string
		allowed bool
		err     error
	}{
		{FailureLocal, BackendDegraded, true, nil},
		{FailureOpen, BackendOpen, true, nil},
		{FailureClosed, BackendClosed, false, ErrBackendUnavailable},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			proxy := startSlowProxy(t, srv.Addr)
			obs := &recObserver{}
			r := newTestResilient(t, proxy.Addr, ResilientOptions{
				FailureMode: tc.mode, Timeout: 100 * time.Millisecond, ProbeInterval: 100 * time.Millisecond, Observer: obs,
			})
			pol := Policy{Requests: perMinute(100), DailyBudgetUSD: 5}
			d, err := r.Admit(ctx, Request{Key: "sub:slow", Policy: pol, CostUSD: 0.1})
			require.NoError(t, err)
			require.Equal(t, BackendRedis, d.Backend)

			// Every byte now takes a second each way; unbounded, the call
			// would take over two. With the 100ms timeout it returns in
			// about that (the margin absorbs a busy CI machine).
			proxy.SetDelay(time.Second)
			start := time.Now()
			d, err = r.Admit(ctx, Request{Key: "sub:slow", Policy: pol, CostUSD: 0.1})
			require.Less(t, time.Since(start), 250*time.Millisecond)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.Equal(t, ReasonBackend, d.Reason)
				require.GreaterOrEqual(t, retrySeconds(d.RetryAfter), 1)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.allowed, d.Allowed)
			require.Equal(t, tc.backend, d.Backend)
			require.Equal(t, tc.backend, r.Backend())

			// While down, calls do not wait for Redis at all.
			start = time.Now()
			for range 10 {
				_, _ = r.Admit(ctx, Request{Key: "sub:slow", Policy: pol, CostUSD: 0.1})
			}
			require.Less(t, time.Since(start), 100*time.Millisecond, "not one of them waited for the 100ms timeout")
			_, decisions := obs.snapshot()
			want := "denied"
			if tc.allowed {
				want = "allowed"
			}
			require.Equal(t, 11, decisions[string(tc.mode)+"/"+want])

			proxy.SetDelay(0)
			require.Eventually(t, func() bool { return r.Backend() == BackendRedis }, 5*time.Second, 20*time.Millisecond)
		})
	}
}

// Settlements of Redis reservations made while Redis is unreachable are
// kept and written once it is back: the refund of an aborted stream is not lost.
func TestResilientReplaysSettlementsAfterOutage(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	proxy := startSlowProxy(t, srv.Addr)
	r := newTestResilient(t, proxy.Addr, ResilientOptions{ProbeInterval: 100 * time.Millisecond})
	pol := Policy{DailyBudgetUSD: 1}
	d, err := r.Admit(ctx, Request{Key: "sub:late", Policy: pol, CostUSD: 0.5})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, BackendRedis, d.Reservation.Backend)

	proxy.SetDelay(time.Second)
	require.NoError(t, r.Settle(ctx, d.Reservation, Usage{CostUSD: 0.2}))
	require.Equal(t, 1, r.Pending())

	proxy.SetDelay(0)
	require.Eventually(t, func() bool { return r.Backend() == BackendRedis && r.Pending() == 0 }, 5*time.Second, 20*time.Millisecond)
	st, err := r.Status(ctx, "sub:late", pol)
	require.NoError(t, err)
	require.Equal(t, BackendRedis, st.Backend)
	require.InDelta(t, 0.2, st.BudgetSpentUSD, 1e-9)
}

func TestResilientClosedAndOpenModes(t *testing.T) {
	ctx := context.Background()
	pol := Policy{Requests: perMinute(3), TokensPerMinute: 100}

	t.Run("closed refuses with ErrBackendUnavailable", func(t *testing.T) {
		srv := startRedis(t)
		obs := &recObserver{}
		r := newTestResilient(t, srv.Addr, ResilientOptions{FailureMode: FailureClosed, ProbeInterval: 2 * time.Second, Observer: obs})
		srv.Stop()
		d, err := r.Admit(ctx, Request{Key: "sub:c", Policy: pol})
		require.ErrorIs(t, err, ErrBackendUnavailable)
		require.False(t, d.Allowed)
		require.Equal(t, ReasonBackend, d.Reason)
		require.Equal(t, 2*time.Second, d.RetryAfter, "the next probe")
		require.Equal(t, BackendClosed, r.Backend())
		_, err = r.Status(ctx, "sub:c", pol)
		require.ErrorIs(t, err, ErrBackendUnavailable)
		_, decisions := obs.snapshot()
		require.Equal(t, map[string]int{"closed/denied": 1}, decisions)
	})

	t.Run("open admits everything and settles nothing", func(t *testing.T) {
		srv := startRedis(t)
		obs := &recObserver{}
		r := newTestResilient(t, srv.Addr, ResilientOptions{FailureMode: FailureOpen, Observer: obs})
		srv.Stop()
		for range 10 {
			d, err := r.Admit(ctx, Request{Key: "sub:o", Policy: pol, Tokens: 50})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			require.Equal(t, BackendOpen, d.Backend)
			require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 80}))
		}
		require.Zero(t, r.Pending())
		st, err := r.Status(ctx, "sub:o", pol)
		require.NoError(t, err)
		require.Equal(t, BackendOpen, st.Backend)
		_, decisions := obs.snapshot()
		require.Equal(t, map[string]int{"open/allowed": 10}, decisions)
	})
}

// Readiness must not depend on Redis: a gateway whose Redis is down at start
// comes up under its failure policy and switches to Redis once it appears.
func TestResilientStartsWithRedisDown(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	srv.Stop()
	obs := &recObserver{}
	r := newTestResilient(t, srv.Addr, ResilientOptions{ProbeInterval: 100 * time.Millisecond, Observer: obs})
	require.Equal(t, BackendDegraded, r.Backend())
	d, err := r.Admit(ctx, Request{Key: "sub:early", Policy: Policy{Requests: perMinute(5)}})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, BackendDegraded, d.Backend)

	srv.Restart()
	require.Eventually(t, func() bool { return r.Backend() == BackendRedis }, 5*time.Second, 20*time.Millisecond)
	ups, _ := obs.snapshot()
	require.Equal(t, []bool{false, true}, ups)
}

// A caller that gives up is not a Redis outage.
func TestResilientCallerCancelIsNotAnOutage(t *testing.T) {
	srv := startRedis(t)
	r := newTestResilient(t, srv.Addr, ResilientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Admit(ctx, Request{Key: "sub:gone", Policy: Policy{Requests: perMinute(5)}})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, BackendRedis, r.Backend())
}

func TestResilientShare(t *testing.T) {
	r := &Resilient{divisor: 3}
	got := r.share(Policy{
		Requests:        Limit{Rate: 30, Period: time.Minute, Burst: 30},
		TokensPerMinute: 100,
		DailyBudgetUSD:  10,
		GlobalDailyUSD:  100,
	})
	require.Equal(t, Policy{
		Requests:        Limit{Rate: 10, Period: time.Minute, Burst: 10},
		TokensPerMinute: 33,
		DailyBudgetUSD:  3.333333,
		GlobalDailyUSD:  33.333333,
	}, got)
	tiny := r.share(Policy{Requests: Limit{Rate: 2, Period: time.Minute}, TokensPerMinute: 2, DailyBudgetUSD: 0.000001})
	require.Equal(t, Limit{Rate: 1, Period: time.Minute, Burst: 1}, tiny.Requests, "a share is never 0")
	require.Equal(t, int64(1), tiny.TokensPerMinute)
	require.Equal(t, 0.000001, tiny.DailyBudgetUSD)
}

func TestNewResilientValidates(t *testing.T) {
	_, err := NewResilient(nil, ResilientOptions{})
	require.ErrorContains(t, err, "nil redis")
	srv := startRedis(t)
	rd := newTestRedis(t, newTestClient(t, srv.Addr), time.Now)
	for name, opts := range map[string]ResilientOptions{
		"failure mode": {FailureMode: "sometimes"},
		"divisor":      {LocalShareDivisor: -1},
		"timeout":      {Timeout: -time.Second},
		"probe":        {ProbeInterval: -time.Second},
	} {
		_, err := NewResilient(rd, opts)
		require.Error(t, err, name)
	}
}

func TestParseFailureMode(t *testing.T) {
	for in, want := range map[string]FailureMode{"": FailureLocal, "local": FailureLocal, "open": FailureOpen, "closed": FailureClosed} {
		got, err := ParseFailureMode(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseFailureMode("Closed")
	require.ErrorContains(t, err, "want local, open or closed")
}

// The local fallback starts from the spend the shared books last showed:
// a replica that loses Redis with $4.50 of a $5 budget spent hands out the
// remaining $0.50, not another $5.
func TestResilientLocalFallbackStartsFromTheSharedSpend(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	proxy := startSlowProxy(t, srv.Addr)
	r := newTestResilient(t, proxy.Addr, ResilientOptions{ProbeInterval: 100 * time.Millisecond})
	pol := Policy{DailyBudgetUSD: 5, GlobalDailyUSD: 100}
	d, err := r.Admit(ctx, Request{Key: "sub:spender", Policy: pol, CostUSD: 4.5})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.InDelta(t, 4.5, d.BudgetSpentUSD, 1e-9, "the decision reports the shared spend")
	require.InDelta(t, 4.5, d.GlobalSpentUSD, 1e-9)

	proxy.SetDelay(time.Second) // Redis keeps its data but stops answering in time
	d, err = r.Admit(ctx, Request{Key: "sub:spender", Policy: pol, CostUSD: 0.4})
	require.NoError(t, err)
	require.Equal(t, BackendDegraded, d.Backend)
	require.True(t, d.Allowed, "$0.40 of the $0.50 left")
	d, err = r.Admit(ctx, Request{Key: "sub:spender", Policy: pol, CostUSD: 0.2})
	require.NoError(t, err)
	require.False(t, d.Allowed, "only $0.10 is left")
	require.Equal(t, ReasonBudget, d.Reason)

	// An identity the replica never saw spend keeps its whole share, but
	// the global cap's known spend still counts.
	d, err = r.Admit(ctx, Request{Key: "sub:other", Policy: Policy{DailyBudgetUSD: 5, GlobalDailyUSD: 4.7}, CostUSD: 0.3})
	require.NoError(t, err)
	require.False(t, d.Allowed, "the global cap has $0.20 left as last seen")
	d, err = r.Admit(ctx, Request{Key: "sub:other", Policy: pol, CostUSD: 4})
	require.NoError(t, err)
	require.True(t, d.Allowed)
}

// A Redis reservation extended while Redis is down follows the failure
// mode: closed refuses (the answer is stopped), open allows, local charges
// the replica's share and refuses beyond it; the reservation itself is left
// as it was, so the settlement replayed to Redis charges the whole usage.
func TestResilientExtendDuringOutage(t *testing.T) {
	ctx := context.Background()
	pol := Policy{DailyBudgetUSD: 1}
	admitted := func(t *testing.T, r *Resilient) Reservation {
		d, err := r.Admit(ctx, Request{Key: "sub:x", Policy: pol, CostUSD: 0.2})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, BackendRedis, d.Reservation.Backend)
		return d.Reservation
	}
	t.Run("closed", func(t *testing.T) {
		srv := startRedis(t)
		r := newTestResilient(t, srv.Addr, ResilientOptions{FailureMode: FailureClosed, ProbeInterval: 2 * time.Second})
		res := admitted(t, r)
		srv.Stop()
		before := res
		ok, err := r.Extend(ctx, &res, 0, 0.1)
		require.ErrorIs(t, err, ErrBackendUnavailable)
		require.False(t, ok)
		require.Equal(t, before, res)
	})
	t.Run("open", func(t *testing.T) {
		srv := startRedis(t)
		r := newTestResilient(t, srv.Addr, ResilientOptions{FailureMode: FailureOpen, ProbeInterval: 2 * time.Second})
		res := admitted(t, r)
		srv.Stop()
		before := res
		ok, err := r.Extend(ctx, &res, 0, 5)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, before, res)
	})
	t.Run("local", func(t *testing.T) {
		srv := startRedis(t)
		proxy := startSlowProxy(t, srv.Addr) // an outage that keeps Redis's data
		r := newTestResilient(t, proxy.Addr, ResilientOptions{LocalShareDivisor: 2, ProbeInterval: 100 * time.Millisecond})
		res := admitted(t, r)
		proxy.SetDelay(time.Second)
		before := res
		for i := range 4 { // this replica's share of what Redis left: ($1 - $0.20) / 2
			ok, err := r.Extend(ctx, &res, 0, 0.1)
			require.NoError(t, err)
			require.True(t, ok, "extension %d", i+1)
		}
		ok, err := r.Extend(ctx, &res, 0, 0.1)
		require.NoError(t, err)
		require.False(t, ok, "beyond the local share")
		require.Equal(t, before, res)
		require.NoError(t, r.Settle(ctx, res, Usage{CostUSD: 0.65}))
		require.Equal(t, 1, r.Pending())
		proxy.SetDelay(0)
		require.Eventually(t, func() bool { return r.Backend() == BackendRedis && r.Pending() == 0 }, 5*time.Second, 20*time.Millisecond)
		st, err := r.Status(ctx, "sub:x", pol)
		require.NoError(t, err)
		require.InDelta(t, 0.65, st.BudgetSpentUSD, 1e-9, "the whole usage reaches Redis")
	})
}
