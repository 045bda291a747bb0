package middleware

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
)

// heldFor sends one request and never reads the answer; the handler
// writes until a write fails and reports how long it was held.
func heldFor(t *testing.T, per time.Duration, limit time.Duration) time.Duration {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(WriteDeadline(per))
	held := make(chan time.Duration, 1)
	e.GET("/flood", func(c *gin.Context) {
		start := time.Now()
		if limit > 0 {
			c.Writer.(WriteLimiter).LimitWrites(start.Add(limit))
		}
		chunk := make([]byte, 64<<10)
		for time.Since(start) < time.Minute {
			if _, err := c.Writer.Write(chunk); err != nil {
				break
			}
			c.Writer.Flush()
		}
		held <- time.Since(start)
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprint(conn, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	select {
	case d := <-held:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("the handler was still writing to a caller that does not read after 30s")
		return 0
	}
}

func TestWriteDeadlineReleasesAHandlerWhoseCallerDoesNotRead(t *testing.T) {
	d := heldFor(t, 300*time.Millisecond, 0)
	require.Less(t, d, 5*time.Second)
}

func TestLimitWritesBoundsEvenSteadyWrites(t *testing.T) {
	d := heldFor(t, time.Minute, 500*time.Millisecond)
	require.GreaterOrEqual(t, d, 400*time.Millisecond)
	require.Less(t, d, 5*time.Second, "the absolute limit wins over the per-write timeout")
}

func TestWriteDeadlineKeepsHeaderOnlyAnswersOnReusedConnections(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(WriteDeadline(200 * time.Millisecond))
	e.GET("/body", func(c *gin.Context) { c.String(http.StatusOK, "x") })
	e.GET("/empty", func(c *gin.Context) { time.Sleep(400 * time.Millisecond); c.Status(http.StatusNoContent) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, p := range []string{"/body", "/empty", "/empty"} {
		resp, err := srv.Client().Get(srv.URL + p)
		require.NoError(t, err, p)
		resp.Body.Close()
	}
}
