package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

func burst(t *testing.T, gws []*testenv.Gateway, n int) (ok, limited, fivexx int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, _ := post(t, gws[i%len(gws)].URL+"/api/query", nil, query)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case c == http.StatusOK:
				ok++
			case c == http.StatusTooManyRequests:
				limited++
			case c >= 500:
				fivexx++
			}
		}(i)
	}
	wg.Wait()
	return ok, limited, fivexx
}

func ready(t *testing.T, g *testenv.Gateway) (int, string) {
	c, _, b := testenv.Do(t, http.MethodGet, g.URL+"/ready", nil, "")
	return c, string(b)
}

// TestRedisOutageFallsBackToTheLocalShareAndRecovers: Redis dies under
// traffic; no request fails with a 5xx, each replica admits only its share,
// /ready stays 200 but says degraded, and the backend metric drops to 0.
// When Redis returns, shared limiting resumes by itself.
func TestRedisOutageFallsBackToTheLocalShareAndRecovers(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_RATE_LIMIT=30/60s", "KEYWARD_REDIS_LOCAL_SHARE=3")
	ok, _, fivexx := burst(t, gws, 6)
	require.Equal(t, 6, ok)
	require.Zero(t, fivexx)

	rds.Stop()
	down := time.Now()
	ok, limited, fivexx := burst(t, gws, 60)
	t.Logf("figure: Redis down: admitted %d/60, %d limited, %d 5xx (local share 10 per replica)", ok, limited, fivexx)
	require.Zero(t, fivexx, "a Redis outage never surfaces as a 5xx")
	require.LessOrEqual(t, ok, 30, "admission is bounded by the local shares (3 × 10)")
	require.Greater(t, ok, 0, "local mode keeps serving")
	for _, g := range gws {
		require.Eventually(t, func() bool {
			c, b := ready(t, g)
			return c == http.StatusOK && strings.Contains(b, `"ratelimit":"degraded"`)
		}, 5*time.Second, 50*time.Millisecond, "/ready stays 200 and reports degraded")
		require.Equal(t, 0.0, g.Metric(t, "keyward_ratelimit_backend_up"))
		require.Greater(t, g.Metric(t, "keyward_ratelimit_fallback_decisions_total", `mode="local"`), 0.0)
	}
	c, _, _ := testenv.Do(t, http.MethodGet, gws[0].URL+"/health", nil, "")
	require.Equal(t, http.StatusOK, c)

	rds.Restart()
	back := time.Now()
	for _, g := range gws {
		require.Eventually(t, func() bool {
			_, b := ready(t, g)
			return strings.Contains(b, `"ratelimit":"redis"`)
		}, 10*time.Second, 50*time.Millisecond, "shared limiting resumes by itself")
		require.Equal(t, 1.0, g.Metric(t, "keyward_ratelimit_backend_up"))
	}
	t.Logf("figure: outage lasted %.1fs; recovered %.1fs after Redis came back", back.Sub(down).Seconds(), time.Since(back).Seconds())
	ok, limited, fivexx = burst(t, gws, 40)
	t.Logf("figure: after recovery: admitted %d/40 (shared limit 30), %d limited", ok, limited)
	require.Zero(t, fivexx)
	require.Equal(t, 30, ok, "the restarted (empty) Redis enforces the shared limit exactly again")
}
