//go:build reliability

package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// TestReliabilityRedisKilledAndRestartedUnderLoad: three replicas share one
// Redis while clients keep sending. Redis is SIGKILLed: no request fails with
// a 5xx or a transport error, the replicas together admit at most the limit
// (the local failure policy gives each a third), and when redis-server comes
// back every replica returns to shared limiting by itself, with all of them
// agreeing on the caller's remaining quota again.
func TestReliabilityRedisKilledAndRestartedUnderLoad(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	const replicas, limit = 3, 30
	var gws []*testenv.Gateway
	for i := 0; i < replicas; i++ {
		gws = append(gws, testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(),
			"KEYWARD_RATE_LIMIT="+strconv.Itoa(limit)+"/60s", "KEYWARD_REDIS_LOCAL_SHARE="+strconv.Itoa(replicas)))
	}
	c := newClient(t, 10*time.Second)
	var rr atomic.Int64
	hit := func(tl *tally) func(int) {
		return func(int) {
			g := gws[rr.Add(1)%replicas]
			tl.add(send(context.Background(), c, g.URL+"/api/query", queryBody))
		}
	}

	warm := newTally()
	for i := 0; i < 6; i++ {
		hit(warm)(0)
	}
	require.Equal(t, 6, warm.count(http.StatusOK), warm.String())

	// Outage: Redis is gone for a fixed three seconds of steady traffic.
	rds.Stop()
	outage := newTally()
	stop := make(chan struct{})
	wg := load(6, 40*time.Millisecond, stop, hit(outage))
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("figure: Redis killed under load: admitted %d/%d in 3 s (local share %d×%d), %s; p99 %v",
		outage.count(http.StatusOK), outage.total(), replicas, limit/replicas, outage.String(), outage.percentile(0.99).Round(time.Millisecond))
	require.Empty(t, outage.errors(), "no connection is dropped while Redis is down")
	require.Zero(t, outage.fivexx(), "a Redis outage never surfaces as a 5xx: %s", outage.String())
	require.Greater(t, outage.count(http.StatusOK), 0, "the local failure policy keeps serving")
	require.LessOrEqual(t, outage.count(http.StatusOK), limit, "admission stays within the limit: each replica admits only its share")
	require.Equal(t, outage.total(), outage.count(http.StatusOK)+outage.count(http.StatusTooManyRequests), outage.String())
	for _, g := range gws {
		require.Equal(t, "degraded", backendOf(g.URL), "/ready tells operators the limiter is degraded")
	}

	// Recovery under the same traffic: nobody restarts a gateway.
	recovery := newTally()
	stop = make(chan struct{})
	wg = load(6, 40*time.Millisecond, stop, hit(recovery))
	rds.Restart()
	back := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	recovered := false
	for time.Now().Before(deadline) {
		all := true
		for _, g := range gws {
			if backendOf(g.URL) != "redis" {
				all = false
			}
		}
		if all {
			recovered = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(back)
	time.Sleep(500 * time.Millisecond) // some traffic on the recovered backend
	close(stop)
	wg.Wait()
	require.True(t, recovered, "every replica returns to shared limiting by itself within 15 s")
	t.Logf("figure: Redis back: all %d replicas on shared limits again after %.1f s, during recovery %s", replicas, took.Seconds(), recovery.String())
	require.Empty(t, recovery.errors())
	require.Zero(t, recovery.fivexx(), recovery.String())

	// Shared state again: every replica reports the same remaining quota.
	var remaining []float64
	for _, g := range gws {
		code, _, b := testenv.Do(t, http.MethodGet, g.URL+"/api/rate-limit-status", nil, "")
		require.Equal(t, http.StatusOK, code, string(b))
		var st map[string]any
		require.NoError(t, json.Unmarshal(b, &st))
		require.Equal(t, "redis", st["backend"])
		remaining = append(remaining, st["remaining"].(float64))
	}
	require.Equal(t, remaining[0], remaining[1], "replicas agree on one shared bucket: %v", remaining)
	require.Equal(t, remaining[0], remaining[2], "replicas agree on one shared bucket: %v", remaining)
	for _, g := range gws {
		require.Equal(t, 1.0, g.Metric(t, "keyward_ratelimit_backend_up"))
		require.Greater(t, g.Metric(t, "keyward_ratelimit_fallback_decisions_total", `mode="local"`), 0.0)
	}
}

// TestReliabilitySlowRedisKeepsLatencyBounded: the network path to Redis
// becomes slow (every command held 2 s by a TCP proxy). The limiter gives up
// on Redis after its 100 ms per-call timeout and applies the failure policy,
// so callers see a small bounded delay, not Redis's; when the path is fast
// again the gateway returns to Redis by itself.
func TestReliabilitySlowRedisKeepsLatencyBounded(t *testing.T) {
	rds := redistest.Start(t)
	proxy := startDelayProxy(t, rds.Addr)
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL=redis://"+proxy.Addr()+"/0", "KEYWARD_REDIS_TIMEOUT=100ms")
	c := newClient(t, 10*time.Second)
	run := func(n int) *tally {
		tl := newTally()
		for i := 0; i < n; i++ {
			tl.add(send(context.Background(), c, gw.URL+"/api/query", queryBody))
		}
		return tl
	}
	base := run(20)
	require.Equal(t, 20, base.count(http.StatusOK), base.String())
	require.Equal(t, "redis", backendOf(gw.URL))

	const delay = 2 * time.Second
	proxy.SetDelay(delay)
	slow := run(30)
	t.Logf("figure: Redis +%v per command: %d/30 answered 200, p50 %v, max %v (fast Redis: p50 %v, max %v)",
		delay, slow.count(http.StatusOK), slow.percentile(0.5).Round(time.Millisecond), slow.percentile(1).Round(time.Millisecond),
		base.percentile(0.5).Round(time.Millisecond), base.percentile(1).Round(time.Millisecond))
	require.Equal(t, 30, slow.count(http.StatusOK), "a slow Redis costs no request: %s", slow.String())
	require.Less(t, slow.percentile(1), 600*time.Millisecond, "no request waits for the slow Redis: the limiter gives up after 100 ms (plus slack for a shared CI machine)")
	require.Less(t, slow.percentile(0.5), base.percentile(0.5)+300*time.Millisecond, "typical latency stays near the fast-Redis latency")
	require.Equal(t, "degraded", backendOf(gw.URL))

	proxy.SetDelay(0)
	start := time.Now()
	require.Eventually(t, func() bool { return backendOf(gw.URL) == "redis" }, 15*time.Second, 50*time.Millisecond,
		"shared limiting resumes by itself once Redis answers in time")
	t.Logf("figure: Redis fast again: back on shared limits after %.1f s", time.Since(start).Seconds())
	after := run(5)
	require.Equal(t, 5, after.count(http.StatusOK), after.String())
}

// TestReliabilitySentinelFailover: the limiter's Redis is a Sentinel-managed
// master with one replica and three sentinels. The master is killed while two
// gateways serve traffic: they keep answering (local shares) during the
// failover, follow the promoted replica without a restart, and over the whole
// run admit at most one burst beyond the limit.
func TestReliabilitySentinelFailover(t *testing.T) {
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		t.Fatalf("redis-sentinel not found (apt-get install redis-sentinel, or ./scripts/deps.sh): %v", err)
	}
	ctx := context.Background()
	master := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	var sentinels []string
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, startSentinel(t, master.Port))
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	t.Cleanup(func() { _ = sc.Close() })
	require.Eventually(t, func() bool {
		ok, err := sc.CkQuorum(ctx, "mymaster").Result()
		if err != nil || !strings.Contains(ok, "3 usable") {
			return false
		}
		reps, err := sc.Replicas(ctx, "mymaster").Result()
		return err == nil && len(reps) == 1
	}, 20*time.Second, 100*time.Millisecond, "three sentinels agree on the master and see the replica")

	mock := testenv.StartMock(t)
	const limit = 20
	var gws []*testenv.Gateway
	for i := 0; i < 2; i++ {
		gws = append(gws, testenv.StartGateway(t, mock.URL,
			"KEYWARD_REDIS_SENTINEL_MASTER=mymaster", "KEYWARD_REDIS_SENTINEL_ADDRS="+strings.Join(sentinels, ","),
			// Per hour: the seconds a failover takes refill nothing, so every
			// admission beyond the limit is over-admission.
			"KEYWARD_RATE_LIMIT="+strconv.Itoa(limit)+"/1h", "KEYWARD_REDIS_LOCAL_SHARE=2"))
	}
	for _, g := range gws {
		require.Equal(t, "redis", backendOf(g.URL))
	}
	c := newClient(t, 10*time.Second)
	total := newTally()
	var rr atomic.Int64
	hit := func(int) {
		total.add(send(ctx, c, gws[rr.Add(1)%2].URL+"/api/query", queryBody))
	}
	for i := 0; i < 8; i++ {
		hit(0)
	}
	require.Equal(t, 8, total.count(http.StatusOK), total.String())
	mc := redis.NewClient(&redis.Options{Addr: master.Addr})
	n, err := mc.Wait(ctx, 1, 2000).Result()
	_ = mc.Close()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the replica has acknowledged the state before the failover")

	stop := make(chan struct{})
	wg := load(2, 100*time.Millisecond, stop, hit)
	time.Sleep(300 * time.Millisecond)
	master.Stop()
	killed := time.Now()
	var promoted, followed time.Duration
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) && followed == 0 {
		if promoted == 0 {
			if addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result(); err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.Port) {
				promoted = time.Since(killed)
			}
		}
		if promoted > 0 && backendOf(gws[0].URL) == "redis" && backendOf(gws[1].URL) == "redis" {
			followed = time.Since(killed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // traffic on the promoted master
	close(stop)
	wg.Wait()
	require.NotZero(t, promoted, "sentinels promoted the replica")
	require.NotZero(t, followed, "both gateways follow the new master without a restart")

	// The promoted master carries the shared state: the bucket is used up.
	code, _, b := testenv.Do(t, http.MethodPost, gws[0].URL+"/api/query", map[string]string{"Content-Type": "application/json"}, queryBody)
	require.Equal(t, http.StatusTooManyRequests, code, string(b))
	admitted := total.count(http.StatusOK)
	t.Logf("figure: Sentinel failover: replica promoted %.1f s after the master died, gateways back on Redis after %.1f s (no restart); admitted %d of %d requests for a limit of %d (at most %d = limit + one burst), %s",
		promoted.Seconds(), followed.Seconds(), admitted, total.total(), limit, 2*limit, total.String())
	require.Empty(t, total.errors())
	require.Zero(t, total.fivexx(), "the failover never surfaces as a 5xx: %s", total.String())
	require.LessOrEqual(t, admitted, 2*limit, "over-admission is at most one burst")
	require.GreaterOrEqual(t, admitted, limit, "the limit itself was available")
}

// startSentinel runs one redis-sentinel monitoring the master on port with
// quorum 2 and short timeouts, and returns its address.
func startSentinel(t *testing.T, masterPort int) string {
	t.Helper()
	port := redistest.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(
		"port %d\nbind 127.0.0.1\ndir %s\nsentinel resolve-hostnames no\n"+
			"sentinel monitor mymaster 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds mymaster 1000\n"+
			"sentinel failover-timeout mymaster 5000\n",
		port, dir, masterPort)), 0o600))
	logf, err := os.Create(filepath.Join(dir, "sentinel.log"))
	require.NoError(t, err)
	cmd := exec.Command("redis-sentinel", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			t.Logf("--- sentinel %d log ---\n%s", port, b)
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	require.NoError(t, redistest.WaitReady(addr, 10*time.Second))
	return addr
}
