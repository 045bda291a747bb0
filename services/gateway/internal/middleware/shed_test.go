package middleware

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

// clientFrom returns an HTTP client whose connections leave from local
// (another address of 127.0.0.0/8, all of which is loopback on Linux).
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		return d.DialContext(ctx, n, a)
	}}}
}

// shedServer runs admit → (authenticated when afterAuth) → a handler that
// waits for release, and reports each request that reached it.
func shedServer(t *testing.T, cfg ShedConfig, afterAuth bool) (url string, started chan struct{}, release chan struct{}) {
	t.Helper()
	cfg.Metrics = metrics.New(prometheus.NewRegistry(), "test")
	cfg.Log = quiet
	admit, authenticated := Shed(cfg)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	chain := []gin.HandlerFunc{RequestID(), ClientIP(), admit}
	if afterAuth {
		chain = append(chain, authenticated)
	}
	e.Use(chain...)
	started, release = make(chan struct{}, 16), make(chan struct{})
	e.GET("/slow", func(c *gin.Context) { started <- struct{}{}; <-release; c.Status(http.StatusOK) })
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL, started, release
}

func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestShedCapsOneAddressBeforeAuthentication(t *testing.T) {
	url, started, release := shedServer(t, ShedConfig{Max: 10, PerAddress: 2}, false)
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() { done <- status(t, a, url+"/slow") }()
	}
	<-started
	<-started // 127.0.0.1 holds both of its slots

	resp, err := a.Get(url + "/slow")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "a third request from the same address is refused")
	require.Equal(t, "1", resp.Header.Get("Retry-After"))

	go func() { done <- status(t, b, url+"/slow") }()
	<-started // another address still gets in
	close(release)
	for i := 0; i < 2; i++ {
		require.Equal(t, http.StatusOK, <-done)
	}
}

func TestShedReleasesTheAddressSlotOnceAuthenticated(t *testing.T) {
	url, started, release := shedServer(t, ShedConfig{Max: 10, PerAddress: 1}, true)
	a := clientFrom("127.0.0.1")
	done := make(chan int, 3)
	for i := 0; i < 3; i++ {
		go func() { done <- status(t, a, url+"/slow") }()
		<-started // authenticated requests no longer count against the address
	}
	close(release)
	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusOK, <-done)
	}
}

func TestAddressKeyGroupsIPv6By64(t *testing.T) {
	k := func(s string) string { return addressKey(netip.MustParseAddr(s)).String() }
	require.Equal(t, k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"))
	require.NotEqual(t, k("2001:db8:1:2::1"), k("2001:db8:1:3::1"))
	require.Equal(t, "192.0.2.7", k("::ffff:192.0.2.7"))
}
