package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
)

func TestRedisConformance(t *testing.T) {
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	runConformance(t, func(t *testing.T, clock *testClock) Limiter {
		return newTestRedis(t, client, clock.Now)
	})
}

// The Cluster-safe admission (global cap in a second script, compensated on
// refusal) must behave the same on one server.
func TestRedisClusterSafeConformance(t *testing.T) {
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	runConformance(t, func(t *testing.T, clock *testClock) Limiter {
		r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), Now: clock.Now, ClusterSafe: true})
		require.NoError(t, err)
		return r
	})
}

// startCluster runs a real one-node Redis Cluster owning every slot, which
// enforces CROSSSLOT exactly like a big one.
func startCluster(t *testing.T) *redistest.Server {
	t.Helper()
	srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	reply, err := srv.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", reply)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	require.Eventually(t, func() bool {
		info, err := c.ClusterInfo(context.Background()).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	}, 10*time.Second, 50*time.Millisecond)
	return srv
}

func TestRedisClusterConformance(t *testing.T) {
	srv := startCluster(t)
	client, err := NewRedisClient(RedisConfig{ClusterAddrs: []string{srv.Addr}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })

	// Why the global cap needs its own script: one script over an identity's
	// keys and the global key is refused by a Cluster.
	r := newTestRedis(t, client, time.Now)
	keys := append(r.identityKeys("sub:x", "2026-01-01"), r.globalKey("2026-01-01"))
	err = admitScript.Run(context.Background(), client, keys, 1, 1, 1, 0, 0, 0, 1, 1, 60).Err()
	require.ErrorContains(t, err, "CROSSSLOT")

	runConformance(t, func(t *testing.T, clock *testClock) Limiter {
		return newTestRedis(t, client, clock.Now)
	})
}

func TestResilientConformance(t *testing.T) {
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	runConformance(t, func(t *testing.T, clock *testClock) Limiter {
		res, err := NewResilient(newTestRedis(t, client, clock.Now), ResilientOptions{Local: MemoryOptions{Now: clock.Now}})
		require.NoError(t, err)
		require.Equal(t, BackendRedis, res.Backend())
		return res
	})
}

// Three replicas, each with its own connection pool, share one limit exactly.
func TestRedisExactAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	prefix := testPrefix(t)
	var replicas []*Redis
	for range 3 {
		r, err := NewRedis(newTestClient(t, srv.Addr), RedisOptions{Prefix: prefix})
		require.NoError(t, err)
		replicas = append(replicas, r)
	}
	pol := Policy{Requests: perMinute(20), TokensPerMinute: 100_000, DailyBudgetUSD: 100}
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"requests only (redis_rate)", Request{Key: "sub:shared", Policy: pol}},
		{"with tokens and budget (script)", Request{Key: "sub:shared2", Policy: pol, Tokens: 100, CostUSD: 0.01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var retry []time.Duration
			allowed, denied := 0, 0
			results := make(chan Decision, 25)
			errs := make(chan error, 25)
			start := make(chan struct{})
			for i := range 25 {
				go func() {
					<-start
					d, err := replicas[i%3].Admit(context.Background(), tc.req)
					errs <- err
					results <- d
				}()
			}
			close(start)
			for range 25 {
				require.NoError(t, <-errs)
				d := <-results
				if d.Allowed {
					allowed++
				} else {
					denied++
					retry = append(retry, d.RetryAfter)
				}
			}
			require.Equal(t, 20, allowed)
			require.Equal(t, 5, denied)
			for _, ra := range retry {
				require.GreaterOrEqual(t, retrySeconds(ra), 1)
			}
		})
	}
}

// State written by our script is the state redis_rate reads, and the other
// way round: both use the same key and TAT encoding.
func TestRedisRequestBucketCompatibleWithRedisRate(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	r := newTestRedis(t, client, time.Now)
	rr := redis_rate.NewLimiter(client)
	pol := Policy{Requests: perMinute(10), TokensPerMinute: 10_000}

	for range 3 {
		d, err := r.Admit(ctx, Request{Key: "sub:compat", Policy: pol, Tokens: 10}) // script path
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	res, err := rr.Allow(ctx, r.reqKey("sub:compat"), redis_rate.PerMinute(10))
	require.NoError(t, err)
	require.Equal(t, 6, res.Remaining, "redis_rate sees the script's three requests")

	d, err := r.Admit(ctx, Request{Key: "sub:compat", Policy: pol, Tokens: 10})
	require.NoError(t, err)
	require.Equal(t, 5, d.Remaining, "the script sees redis_rate's request")

	keys, err := client.Keys(ctx, "*sub:compat*").Result()
	require.NoError(t, err)
	prefix := testPrefix(t) + KeyVersion
	require.ElementsMatch(t, []string{
		"rate:" + prefix + "{sub:compat}:req",
		"rate:" + prefix + "{sub:compat}:tok",
	}, keys)
}

func TestRedisBudgetKeysExpire(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	r := newTestRedis(t, client, time.Now)
	pol := Policy{DailyBudgetUSD: 5, GlobalDailyUSD: 50}
	d, err := r.Admit(ctx, Request{Key: "sub:ttl", Policy: pol, CostUSD: 1.25})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	day := d.Reservation.Day
	for _, key := range []string{r.identityKeys("sub:ttl", day)[2], r.globalKey(day)} {
		v, err := client.Get(ctx, key).Result()
		require.NoError(t, err)
		require.Equal(t, "1250000", v, "micro-dollars")
		ttl, err := client.TTL(ctx, key).Result()
		require.NoError(t, err)
		require.InDelta(t, (48 * time.Hour).Seconds(), ttl.Seconds(), 5)
	}
	require.NoError(t, r.Settle(ctx, d.Reservation, Usage{CostUSD: 0.5}))
	v, err := client.Get(ctx, r.globalKey(day)).Result()
	require.NoError(t, err)
	require.Equal(t, "500000", v)
}

// Each admitted request costs one round trip for all its checks and one
// for settling, counted on the client with a hook.
func TestRedisRoundTrips(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	for _, tc := range []struct {
		name        string
		clusterSafe bool
		req         Request
		used        Usage
	}{
		{"requests only", false, Request{Key: "sub:rt1", Policy: Policy{Requests: perMinute(100)}}, Usage{}},
		{"requests, tokens, budget, global", false, Request{Key: "sub:rt2", Policy: Policy{
			Requests: perMinute(100), TokensPerMinute: 1e6, DailyBudgetUSD: 100, GlobalDailyUSD: 1000,
		}, Tokens: 1200, CostUSD: 0.02}, Usage{Tokens: 700, CostUSD: 0.01}},
		{"cluster-safe, global in another slot", true, Request{Key: "sub:rt3", Policy: Policy{
			Requests: perMinute(100), TokensPerMinute: 1e6, DailyBudgetUSD: 100, GlobalDailyUSD: 1000,
		}, Tokens: 1200, CostUSD: 0.02}, Usage{Tokens: 700, CostUSD: 0.01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := newTestClient(t, srv.Addr)
			var rt rtCounter
			client.AddHook(&rt)
			r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), ClusterSafe: tc.clusterSafe})
			require.NoError(t, err)
			// Warm up: the first call may need EVAL after NOSCRIPT.
			d, err := r.Admit(ctx, tc.req)
			require.NoError(t, err)
			require.NoError(t, r.Settle(ctx, d.Reservation, tc.used))

			for range 10 {
				before := rt.n.Load()
				d, err := r.Admit(ctx, tc.req)
				require.NoError(t, err)
				require.True(t, d.Allowed)
				require.Equal(t, int64(1), rt.n.Load()-before, "round trips per Admit")

				before = rt.n.Load()
				require.NoError(t, r.Settle(ctx, d.Reservation, tc.used))
				want := int64(1)
				if tc.used == (Usage{}) {
					want = 0 // nothing reserved, nothing used: nothing to send
				}
				require.Equal(t, want, rt.n.Load()-before, "round trips per Settle")
			}
		})
	}
}

// The same, seen from the server: INFO commandstats counts exactly one
// EVALSHA per Admit and per Settle, and no EVAL (script cache hits).
func TestRedisCommandStats(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	r := newTestRedis(t, client, time.Now)
	pol := Policy{Requests: perMinute(1000), TokensPerMinute: 1e6, DailyBudgetUSD: 100, GlobalDailyUSD: 1000}
	req := Request{Key: "sub:stats", Policy: pol, Tokens: 500, CostUSD: 0.01}
	d, err := r.Admit(ctx, req)
	require.NoError(t, err)
	require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 100, CostUSD: 0.001}))

	require.NoError(t, client.ConfigResetStat(ctx).Err())
	const n = 25
	for range n {
		d, err := r.Admit(ctx, req)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 100, CostUSD: 0.001}))
	}
	info, err := client.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	calls := commandCalls(t, info)
	require.Equal(t, 2*n, calls["evalsha"], info)
	require.Zero(t, calls["eval"], info)
	for cmd := range calls {
		// Everything else ran inside the scripts (or is the stats call itself).
		require.Contains(t, []string{"evalsha", "get", "set", "incrby", "expire", "time", "del", "config|resetstat"}, cmd)
	}
}

func commandCalls(t *testing.T, info string) map[string]int {
	t.Helper()
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.Atoi(v)
				require.NoError(t, err)
				calls[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return calls
}

// After a failover or restart Redis has no scripts cached; EVALSHA gets
// NOSCRIPT and both single scripts and pipelines must fall back to EVAL.
func TestRedisRecoversFromEmptyScriptCache(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	for _, clusterSafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("clusterSafe=%v", clusterSafe), func(t *testing.T) {
			r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), ClusterSafe: clusterSafe})
			require.NoError(t, err)
			pol := Policy{Requests: perMinute(10), TokensPerMinute: 1000, DailyBudgetUSD: 1, GlobalDailyUSD: 1}
			for i := range 3 {
				require.NoError(t, client.ScriptFlush(ctx).Err())
				d, err := r.Admit(ctx, Request{Key: "sub:flush", Policy: pol, Tokens: 10, CostUSD: 0.1})
				require.NoError(t, err)
				require.True(t, d.Allowed)
				require.Equal(t, 9-i, d.Remaining)
				require.NoError(t, client.ScriptFlush(ctx).Err())
				require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 10, CostUSD: 0.05}))
			}
			st, err := r.Status(ctx, "sub:flush", pol)
			require.NoError(t, err)
			require.InDelta(t, 0.15, st.BudgetSpentUSD, 1e-9)
		})
	}
}

// In Cluster-safe mode a refusal by one side is given back on the other.
func TestRedisClusterSafeCompensates(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	client := newTestClient(t, srv.Addr)
	r, err := NewRedis(client, RedisOptions{Prefix: testPrefix(t), ClusterSafe: true})
	require.NoError(t, err)
	pol := Policy{Requests: perMinute(10), TokensPerMinute: 1000, DailyBudgetUSD: 1, GlobalDailyUSD: 0.5}

	// Global refuses after the identity side committed: the identity's
	// request, tokens and budget come back.
	d, err := r.Admit(ctx, Request{Key: "sub:a", Policy: pol, Tokens: 100, CostUSD: 0.4})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = r.Admit(ctx, Request{Key: "sub:a", Policy: pol, Tokens: 100, CostUSD: 0.4})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, ReasonGlobalBudget, d.Reason)
	require.Equal(t, 9, d.Remaining)
	st, err := r.Status(ctx, "sub:a", pol)
	require.NoError(t, err)
	require.Equal(t, 9, st.Remaining)
	require.InDelta(t, 900, st.TokensRemaining, 10)
	require.InDelta(t, 0.4, st.BudgetSpentUSD, 1e-9)

	// The identity refuses after the global side committed: the global
	// reservation comes back.
	d, err = r.Admit(ctx, Request{Key: "sub:a", Policy: pol, Tokens: 500, CostUSD: 0.7})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.True(t, d.Unsatisfiable, "0.7 exceeds the 0.5 global cap outright")
	d, err = r.Admit(ctx, Request{Key: "sub:b", Policy: Policy{DailyBudgetUSD: 0.05, GlobalDailyUSD: 0.5}, CostUSD: 0.04})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = r.Admit(ctx, Request{Key: "sub:b", Policy: Policy{DailyBudgetUSD: 0.05, GlobalDailyUSD: 0.5}, CostUSD: 0.04})
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, ReasonBudget, d.Reason)
	global, err := client.Get(ctx, r.globalKey(utcDay(time.Now()))).Result()
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(400000+40000), global, "only admitted calls stay on the global counter")
}

func TestNewRedisValidates(t *testing.T) {
	_, err := NewRedis(nil, RedisOptions{})
	require.ErrorContains(t, err, "nil client")

	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err = NewRedis(c, RedisOptions{})
	require.ErrorContains(t, err, "ContextTimeoutEnabled")

	c2 := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c2.Close()
	_, err = NewRedis(c2, RedisOptions{Prefix: "a{b}:"})
	require.ErrorContains(t, err, "Prefix")
}

// Identities with hash-tag characters keep all their keys in one slot and
// never collide with another identity.
func TestRedisKeysStayInOneSlot(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	r, err := NewRedis(c, RedisOptions{Prefix: "t:"})
	require.NoError(t, err)
	seen := map[string]string{}
	for _, id := range []string{"sub:alice", "sub:}x", "sub:{}", "}", "{", "sub:%7D", "sub:a}b{c"} {
		keys := r.identityKeys(id, "2026-01-01")
		tag := hashTag(keys[0])
		require.NotEmpty(t, tag, id)
		for _, k := range keys {
			require.Equal(t, tag, hashTag(k), "key %s of %s", k, id)
		}
		if other, ok := seen[keys[0]]; ok {
			t.Fatalf("%q and %q share key %s", id, other, keys[0])
		}
		seen[keys[0]] = id
	}
	require.NotContains(t, r.identityKeys("global", "2026-01-01"), r.globalKey("2026-01-01"))
}

// hashTag is Redis Cluster's rule: the text between the first { and the
// next }, if not empty.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return ""
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return ""
	}
	return key[open+1 : open+1+end]
}
