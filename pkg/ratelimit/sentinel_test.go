package ratelimit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
)

// startSentinel runs one redis-sentinel (quorum 1) watching master, with
// short timeouts so a failover takes a few seconds.
func startSentinel(t *testing.T, master *redistest.Server) string {
	t.Helper()
	port := redistest.FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(
		"port %d\nbind 127.0.0.1\ndir %s\nsentinel resolve-hostnames no\n"+
			"sentinel monitor mymaster 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds mymaster 500\n"+
			"sentinel failover-timeout mymaster 3000\n",
		port, dir, master.Port)), 0o600))
	logf, err := os.Create(filepath.Join(dir, "sentinel.log"))
	require.NoError(t, err)
	cmd := exec.Command("redis-server", conf, "--sentinel")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	require.NoError(t, redistest.WaitReady(addr, 10*time.Second))
	return addr
}

// Through Sentinel, a master failure is an outage for a few seconds (local
// share), after which the limiter follows the promoted replica by itself,
// with the replicated limit state intact.
func TestResilientFollowsSentinelFailover(t *testing.T) {
	ctx := context.Background()
	master := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	sentinel := startSentinel(t, master)

	client, err := NewRedisClient(RedisConfig{SentinelMaster: "mymaster", SentinelAddrs: []string{sentinel}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	r, err := NewResilient(newTestRedis(t, client, time.Now), ResilientOptions{
		ProbeInterval: 100 * time.Millisecond, Timeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })

	// Per hour, so the seconds the failover takes refill nothing.
	pol := Policy{Requests: Limit{Rate: 10, Period: time.Hour, Burst: 10}, DailyBudgetUSD: 1}
	for i := range 3 {
		d, err := r.Admit(ctx, Request{Key: "sub:ha", Policy: pol, CostUSD: 0.1})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, BackendRedis, d.Backend)
		require.Equal(t, 9-i, d.Remaining)
	}
	// Let the replica catch up, so the test is about failover, not lag.
	require.Eventually(t, func() bool { return replicaHasKeys(t, replica.Addr) }, 10*time.Second, 50*time.Millisecond)

	master.Stop()
	require.Eventually(t, func() bool {
		d, err := r.Admit(ctx, Request{Key: "sub:probe", Policy: pol})
		return err == nil && d.Backend == BackendRedis && r.Backend() == BackendRedis && masterIs(t, replica.Addr)
	}, 20*time.Second, 100*time.Millisecond, "the limiter follows the promoted replica")

	d, err := r.Admit(ctx, Request{Key: "sub:ha", Policy: pol, CostUSD: 0.1})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, BackendRedis, d.Backend)
	require.Equal(t, 6, d.Remaining, "the state replicated before the failover survived it")
	st, err := r.Status(ctx, "sub:ha", pol)
	require.NoError(t, err)
	require.InDelta(t, 0.4, st.BudgetSpentUSD, 1e-9)
}

func replicaHasKeys(t *testing.T, addr string) bool {
	c := newTestClient(t, addr)
	keys, err := c.Keys(context.Background(), "*sub:ha*").Result()
	return err == nil && len(keys) == 2
}

func masterIs(t *testing.T, addr string) bool {
	c := newTestClient(t, addr)
	info, err := c.Info(context.Background(), "replication").Result()
	return err == nil && strings.Contains(info, "role:master")
}
