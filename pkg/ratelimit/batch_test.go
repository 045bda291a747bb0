package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
)

// gateHook counts the scripts a client sends, lone commands and pipelines
// apart, and can hold every such send until released, so a test decides
// when calls overlap instead of hoping they do. Other commands (a new
// connection's HELLO pipeline, Cluster discovery) pass untouched.
type gateHook struct {
	procs, pipes, piped atomic.Int64 // lone commands, pipelines, commands in pipelines

	mu       sync.Mutex
	hold     chan struct{} // non-nil: sends wait until it is closed
	failPipe error         // non-nil: pipelines fail with it, unsent
}

func (h *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isScriptCmd(cmd) {
			return next(ctx, cmd)
		}
		h.procs.Add(1)
		h.wait()
		return next(ctx, cmd)
	}
}

func (h *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || !isScriptCmd(cmds[0]) {
			return next(ctx, cmds)
		}
		h.pipes.Add(1)
		h.piped.Add(int64(len(cmds)))
		h.wait()
		h.mu.Lock()
		err := h.failPipe
		h.mu.Unlock()
		if err != nil {
			return err
		}
		return next(ctx, cmds)
	}
}

func isScriptCmd(cmd redis.Cmder) bool { return strings.HasPrefix(cmd.Name(), "eval") }

func (h *gateHook) wait() {
	h.mu.Lock()
	hold := h.hold
	h.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

// closeGate holds sends from now on and returns what lets them go.
func (h *gateHook) closeGate() (open func()) {
	hold := make(chan struct{})
	h.mu.Lock()
	h.hold = hold
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.hold = nil
			h.mu.Unlock()
			close(hold)
		})
	}
}

func (h *gateHook) reset() { h.procs.Store(0); h.pipes.Store(0); h.piped.Store(0) }

// queued is how many live calls wait in b's queue.
func queued(b *batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.queue {
		if c.state != callAbandoned {
			n++
		}
	}
	return n
}

func waitQueued(t *testing.T, b *batcher, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return queued(b) == n }, 5*time.Second, time.Millisecond,
		"calls queued behind the held senders")
}

func sending(b *batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sending
}

// scriptCalls is INFO commandstats' calls per command, read on a client of
// its own so the counted client's hooks never see it.
func scriptCalls(t *testing.T, admin redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := admin.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	return commandCalls(t, info)
}

type clientKind struct {
	name        string
	clusterSafe bool // set, or automatic with a Cluster client
	// connect returns the client under test and an admin client on the
	// same server (for INFO and SCRIPT FLUSH).
	connect func(t *testing.T) (client, admin redis.UniversalClient)
}

func clientKinds() []clientKind {
	plain := func(t *testing.T) (redis.UniversalClient, redis.UniversalClient) {
		srv := startRedis(t)
		return newTestClient(t, srv.Addr), newTestClient(t, srv.Addr)
	}
	return []clientKind{
		{"plain", false, plain},
		{"plain cluster-safe", true, plain},
		{"sentinel", false, func(t *testing.T) (redis.UniversalClient, redis.UniversalClient) {
			master := redistest.Start(t)
			sentinel := startSentinel(t, master)
			c, err := NewRedisClient(RedisConfig{SentinelMaster: "mymaster", SentinelAddrs: []string{sentinel}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			return c, newTestClient(t, master.Addr)
		}},
		{"cluster", true, func(t *testing.T) (redis.UniversalClient, redis.UniversalClient) {
			srv := startCluster(t)
			c, err := NewRedisClient(RedisConfig{ClusterAddrs: []string{srv.Addr}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			return c, newTestClient(t, srv.Addr)
		}},
	}
}

// 64 concurrent admissions against a burst of 10 get exactly 10 yeses, with
// every client kind, while all but the first two go out in one pipeline.
// Redis still runs one EVALSHA per admission.
func TestBatcherConcurrentAdmissions(t *testing.T) {
	ctx := context.Background()
	for _, kind := range clientKinds() {
		t.Run(kind.name, func(t *testing.T) {
			client, admin := kind.connect(t)
			hook := &gateHook{}
			client.AddHook(hook)
			r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), ClusterSafe: kind.clusterSafe})
			require.NoError(t, err)
			require.NotNil(t, r.batch, "batching is on by default")

			pol := Policy{Requests: Limit{Rate: 10, Period: time.Hour, Burst: 10}, DailyBudgetUSD: 100, GlobalDailyUSD: 1000}
			_, err = r.Admit(ctx, Request{Key: "sub:warm", Policy: pol, CostUSD: 0.01}) // loads the scripts
			require.NoError(t, err)
			hook.reset()
			// A lone call goes straight out, unpipelined.
			d, err := r.Admit(ctx, Request{Key: "sub:warm", Policy: pol, CostUSD: 0.01})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			if !kind.clusterSafe {
				require.Equal(t, int64(1), hook.procs.Load())
				require.Zero(t, hook.pipes.Load(), "a lone admission is not pipelined")
			}
			require.NoError(t, admin.ConfigResetStat(ctx).Err())
			hook.reset()

			const n = 64
			open := hook.closeGate()
			defer open()
			var allowed atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					d, err := r.Admit(ctx, Request{Key: "sub:burst", Policy: pol, CostUSD: 0.01})
					if err != nil {
						errs <- err
						return
					}
					if d.Allowed {
						allowed.Add(1)
					} else if d.Reason != ReasonRequests {
						errs <- fmt.Errorf("refused for %s, want requests", d.Reason)
					}
				})
			}
			waitQueued(t, r.batch, n-defaultBatchSenders)
			open()
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, int64(10), allowed.Load(), "admitted of %d against a burst of 10", n)

			calls := scriptCalls(t, admin)
			if kind.clusterSafe {
				// Two scripts per admission (identity, global) plus the
				// compensations of the refused ones: round trips of their own.
				require.GreaterOrEqual(t, hook.pipes.Load(), int64(1))
				require.Equal(t, 2*n+(n-10), calls["evalsha"])
				return
			}
			require.Equal(t, n, calls["evalsha"], "one EVALSHA per admission")
			require.Zero(t, calls["eval"])
			require.Equal(t, int64(defaultBatchSenders), hook.procs.Load(), "the two calls that found a slot free")
			require.Equal(t, int64(1), hook.pipes.Load(), "everyone queued behind them: one pipeline")
			require.Equal(t, int64(n-defaultBatchSenders), hook.piped.Load())
			require.Zero(t, sending(r.batch), "every slot given back")
		})
	}
}

// Without holds, many callers still share round trips, and the decisions
// stay exact: against a burst of 100, 100 of 400 are admitted.
func TestBatcherBatchesUnderLoad(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	hook := &gateHook{}
	client.AddHook(hook)
	r := newTestRedis(t, client, time.Now)
	pol := Policy{Requests: Limit{Rate: 100, Period: time.Hour, Burst: 100}}
	_, err := r.Admit(ctx, Request{Key: "sub:warm", Policy: pol})
	require.NoError(t, err)
	hook.reset()

	const workers, each = 32, 12
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				d, err := r.Admit(ctx, Request{Key: "sub:load", Policy: pol})
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(100), allowed.Load())
	roundTrips := hook.procs.Load() + hook.pipes.Load()
	require.Equal(t, int64(workers*each), hook.procs.Load()+hook.piped.Load(), "every admission sent once")
	require.Less(t, roundTrips, int64(workers*each*3/4), "round trips for %d admissions", workers*each)
	t.Logf("%d admissions in %d round trips (%d pipelines)", workers*each, roundTrips, hook.pipes.Load())
}

// A queued caller whose deadline passes returns promptly, while the send it
// waits behind is still stuck; its command is then never sent, and the
// callers that stayed get their replies.
func TestBatcherQueuedCallerLeavesOnDeadline(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	admin := newTestClient(t, srv.Addr)
	hook := &gateHook{}
	client.AddHook(hook)
	r := newTestRedis(t, client, time.Now)
	pol := Policy{Requests: perMinute(100)}
	_, err := r.Admit(ctx, Request{Key: "sub:warm", Policy: pol})
	require.NoError(t, err)
	require.NoError(t, admin.ConfigResetStat(ctx).Err())

	open := hook.closeGate()
	defer open()
	var wg sync.WaitGroup
	stayed := make(chan error, defaultBatchSenders+1)
	for range defaultBatchSenders + 1 { // both slots held, one more queued
		wg.Go(func() {
			d, err := r.Admit(ctx, Request{Key: "sub:stay", Policy: pol})
			if err == nil && !d.Allowed {
				err = errors.New("refused")
			}
			stayed <- err
		})
	}
	waitQueued(t, r.batch, 1)

	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.Admit(tctx, Request{Key: "sub:leave", Policy: pol})
	took := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, took, 500*time.Millisecond, "returned with its deadline, not with the stuck send")
	require.Equal(t, 1, queued(r.batch), "left the queue")

	open()
	wg.Wait()
	close(stayed)
	for err := range stayed {
		require.NoError(t, err)
	}
	require.Equal(t, defaultBatchSenders+1, scriptCalls(t, admin)["evalsha"], "the caller that left sent nothing")
	require.Zero(t, sending(r.batch))
}

// When the caller picked to send a batch leaves before sending it, another
// member sends it, and the slot is not lost.
func TestBatcherSenderLeavesBeforeSending(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	admin := newTestClient(t, srv.Addr)
	b := newBatcher(client)
	b.senders = 1
	require.True(t, b.take()) // the slot is busy, as if a send were in flight

	cmd := func() *redis.Cmd { return redis.NewCmd(ctx, "incr", "batch:leaves") }
	// No deadline is the latest deadline: the leaver is picked to send.
	leaveCtx, leave := context.WithCancel(ctx)
	leaverDone := make(chan error, 1)
	go func() { leaverDone <- b.do(leaveCtx, cmd()) }()
	waitQueued(t, b, 1)
	stayCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stayer := cmd()
	stayerDone := make(chan error, 1)
	go func() { stayerDone <- b.do(stayCtx, stayer) }()
	waitQueued(t, b, 2)

	// Free the slot the way a finished send does, but let the leaver go
	// before it is woken.
	b.mu.Lock()
	next := b.nextLocked()
	b.mu.Unlock()
	require.NotNil(t, next)
	require.False(t, next.hasDeadline, "the caller without a deadline was picked to send")
	leave()
	require.ErrorIs(t, <-leaverDone, context.Canceled)
	require.NoError(t, <-stayerDone)
	require.NoError(t, stayer.Err())
	require.Equal(t, int64(1), stayer.Val(), "the stayer's command ran, the leaver's did not")
	n, err := admin.Get(ctx, "batch:leaves").Int()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Zero(t, sending(b), "the slot came back")
}

// A sender that panics (in a hook, say) takes the panic up its own stack;
// the others in its batch get an error, and the slot is not lost.
func TestBatcherSenderPanics(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	client.AddHook(panicHook{})
	b := newBatcher(client)
	b.senders = 1
	require.True(t, b.take())

	type result struct {
		panicked any
		cmd      *redis.Cmd
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			cmd := redis.NewCmd(ctx, "incr", "batch:panics")
			defer func() { results <- result{panicked: recover(), cmd: cmd} }()
			_ = b.do(ctx, cmd)
		}()
	}
	waitQueued(t, b, 2)
	b.release()
	var panics, failed int
	for range 2 {
		r := <-results
		if r.panicked != nil {
			panics++
			continue
		}
		require.ErrorIs(t, r.cmd.Err(), errBatchPanicked)
		failed++
	}
	require.Equal(t, 1, panics, "the sender")
	require.Equal(t, 1, failed, "the other member")
	require.Zero(t, sending(b), "the slot came back")
}

type panicHook struct{}

func (panicHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (panicHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (panicHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if isScriptCmd(cmds[0]) || cmds[0].Name() == "incr" {
			panic("hook panics")
		}
		return next(ctx, cmds)
	}
}

// A pipeline that fails reaches every caller in it with its error.
func TestBatcherPipelineErrorReachesEveryMember(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	hook := &gateHook{}
	client.AddHook(hook)
	for _, clusterSafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("clusterSafe=%v", clusterSafe), func(t *testing.T) {
			r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), ClusterSafe: clusterSafe})
			require.NoError(t, err)
			pol := Policy{Requests: perMinute(100), GlobalDailyUSD: 1000}
			for _, key := range []string{"sub:a", "sub:b"} {
				_, err := r.Admit(ctx, Request{Key: key, Policy: pol, CostUSD: 0.01}) // loads the scripts
				require.NoError(t, err)
			}
			injected := errors.New("injected pipeline failure")
			hook.mu.Lock()
			hook.failPipe = injected
			hook.mu.Unlock()
			defer func() {
				hook.mu.Lock()
				hook.failPipe = nil
				hook.mu.Unlock()
			}()

			const n = 10
			// Cluster-safe admissions are pipelines themselves, so there
			// every one fails; otherwise only the queued ones share one.
			lone := defaultBatchSenders
			if clusterSafe {
				lone = 0
			}
			open := hook.closeGate()
			defer open()
			errs := make(chan error, n+lone)
			var wg sync.WaitGroup
			for i := range n + lone {
				wg.Go(func() {
					_, err := r.Admit(ctx, Request{Key: fmt.Sprintf("sub:%d", i), Policy: pol, CostUSD: 0.01})
					errs <- err
				})
			}
			waitQueued(t, r.batch, n+lone-defaultBatchSenders)
			open()
			wg.Wait()
			close(errs)
			failed := 0
			for err := range errs {
				if err != nil {
					require.ErrorIs(t, err, injected)
					failed++
				}
			}
			require.Equal(t, n, failed, "every member of the failed pipeline got its error")
		})
	}
}

// After SCRIPT FLUSH (a restart, a failover to a fresh replica) a batch of
// EVALSHAs all get NOSCRIPT; each caller falls back to EVAL, batched too,
// and gets a correct decision.
func TestBatcherRecoversFromScriptFlush(t *testing.T) {
	ctx := context.Background()
	for _, kind := range clientKinds()[:2] {
		t.Run(kind.name, func(t *testing.T) {
			client, admin := kind.connect(t)
			hook := &gateHook{}
			client.AddHook(hook)
			r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), ClusterSafe: kind.clusterSafe})
			require.NoError(t, err)
			for _, pol := range []Policy{
				{Requests: Limit{Rate: 5, Period: time.Hour, Burst: 5}},                                            // redis_rate's script
				{Requests: Limit{Rate: 5, Period: time.Hour, Burst: 5}, DailyBudgetUSD: 100, GlobalDailyUSD: 1000}, // ours
			} {
				key := fmt.Sprintf("sub:flush-%v", pol.DailyBudgetUSD > 0)
				_, err := r.Admit(ctx, Request{Key: "sub:warm", Policy: pol, CostUSD: 0.01})
				require.NoError(t, err)
				require.NoError(t, admin.ScriptFlush(ctx).Err())
				require.NoError(t, admin.ConfigResetStat(ctx).Err())

				const n = 12
				open := hook.closeGate()
				var allowed atomic.Int64
				errs := make(chan error, n)
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						d, err := r.Admit(ctx, Request{Key: key, Policy: pol, CostUSD: 0.01})
						if d.Allowed {
							allowed.Add(1)
						}
						errs <- err
					})
				}
				waitQueued(t, r.batch, n-defaultBatchSenders)
				open()
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
				require.Equal(t, int64(5), allowed.Load())
				require.Positive(t, scriptCalls(t, admin)["eval"], "fell back to EVAL")

				// And the cache is warm again: the next call is one EVALSHA.
				require.NoError(t, admin.ConfigResetStat(ctx).Err())
				_, err = r.Admit(ctx, Request{Key: key, Policy: pol, CostUSD: 0.01})
				require.NoError(t, err)
				calls := scriptCalls(t, admin)
				require.Zero(t, calls["eval"])
				require.Positive(t, calls["evalsha"])
			}
		})
	}
}

// Unbatched is the escape hatch: every call its own round trip.
func TestRedisUnbatched(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	hook := &gateHook{}
	client.AddHook(hook)
	r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), Unbatched: true})
	require.NoError(t, err)
	require.Nil(t, r.batch)
	pol := Policy{Requests: Limit{Rate: 10, Period: time.Hour, Burst: 10}}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if d, err := r.Admit(ctx, Request{Key: "sub:u", Policy: pol}); err == nil && d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(10), allowed.Load())
	require.Zero(t, hook.pipes.Load())
}
