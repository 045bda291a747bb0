package middleware

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
)

func bodyServer(t *testing.T, p ReadProgress) string {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(RequestID(), Body(1<<20, p, quiet))
	e.POST("/api/query", func(c *gin.Context) {
		// A handler that outlives the body deadline: the request must stay
		// alive (net/http's connection watch must not inherit the deadline).
		select {
		case <-time.After(2 * p.Timeout):
			c.JSON(http.StatusOK, gin.H{"n": c.Request.ContentLength})
		case <-c.Request.Context().Done():
			c.Status(499)
		}
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// trickle sends a request head announcing size bytes, then the body in
// pieces of chunk bytes every gap, and returns the response status line and
// body (or the error that ended the read).
func trickle(t *testing.T, addr string, size, chunk int, gap time.Duration) (string, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprintf(conn, "POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	require.NoError(t, err)
	go func() {
		for sent := 0; sent < size; sent += chunk {
			if _, err := conn.Write([]byte(strings.Repeat(" ", min(chunk, size-sent)))); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err.Error(), time.Since(start)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Status, string(b), time.Since(start)
}

func TestBodyTrickleGets408AtTheDeadline(t *testing.T) {
	addr := bodyServer(t, ReadProgress{Timeout: 300 * time.Millisecond, MinRate: 1000})
	st, body, took := trickle(t, addr, 1000, 1, 100*time.Millisecond)
	require.Equal(t, "408 Request Timeout", st)
	require.Contains(t, body, `"error":"Request timeout"`)
	require.Less(t, took, 2*time.Second, "cut near the deadline, not at the server's read timeout")
}

func TestBodyThatKeepsUpIsReadBeyondTheBaseTimeout(t *testing.T) {
	// 3000 bytes at ~5000 B/s take ~600 ms, twice the base timeout, but
	// every byte earns 1 ms at the minimum rate of 1000 B/s.
	addr := bodyServer(t, ReadProgress{Timeout: 300 * time.Millisecond, MinRate: 1000})
	st, body, _ := trickle(t, addr, 3000, 100, 20*time.Millisecond)
	require.Equal(t, "200 OK", st, body)
}

func TestBodyDeadlineDoesNotCancelTheRequestAfterwards(t *testing.T) {
	addr := bodyServer(t, ReadProgress{Timeout: 200 * time.Millisecond, MinRate: 1000})
	for _, size := range []int{2, 0} {
		st, body, _ := trickle(t, addr, size, 2, 0)
		require.Equal(t, "200 OK", st, "size %d: %s", size, body)
	}
}

func TestRefusalBeforeTheBodyIsAnsweredAtOnce(t *testing.T) {
	// A refused request whose body trickles: without closing the
	// connection, net/http would read the rest of the body before sending
	// the refusal.
	addr := bodyServer(t, ReadProgress{Timeout: 10 * time.Second, MinRate: 1000})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprint(conn, "POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n{")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	require.True(t, resp.Close, "the connection is closed after the refusal")
	require.Less(t, time.Since(start), time.Second)
}
