package middleware

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func engine(mw ...gin.HandlerFunc) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(RequestID())
	e.Use(mw...)
	e.POST("/api/query", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"body": string(reqctx.Get(c).Body)}) })
	e.GET("/api/x", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	return e
}

func TestCORSAllowsExactlyTheConfiguredOrigins(t *testing.T) {
	e := engine(CORS([]string{"https://app.example.com", "http://localhost:8501"}))
	preflight := func(origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodOptions, "/api/query", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		return w
	}
	w := preflight("https://app.example.com")
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, "https://app.example.com", w.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, w.Header().Values("Vary"), "Origin")
	require.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"))
	require.Contains(t, strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")), "authorization")

	// The official SDKs' headers, so a browser app can use them against the gateway.
	r := httptest.NewRequest(http.MethodOptions, "/api/query", nil)
	r.Header.Set("Origin", "http://localhost:8501")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "anthropic-version,x-api-key,x-stainless-retry-count,anthropic-dangerous-direct-browser-access,content-type")
	w = httptest.NewRecorder()
	e.ServeHTTP(w, r)
	require.Equal(t, http.StatusNoContent, w.Code)

	for _, evil := range []string{"https://evil.example", "https://app.example.com.evil.net", "null", "http://app.example.com", "https://APP.example.com:444"} {
		w := preflight(evil)
		require.Equal(t, http.StatusForbidden, w.Code, evil)
		require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), evil)
	}

	// A simple request from a foreign origin gets no allow-origin header, so the
	// browser withholds the answer; a non-browser call (no Origin) is unaffected.
	r = httptest.NewRequest(http.MethodGet, "/api/x", nil)
	r.Header.Set("Origin", "https://evil.example")
	w = httptest.NewRecorder()
	e.ServeHTTP(w, r)
	require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	r = httptest.NewRequest(http.MethodGet, "/api/x", nil)
	w = httptest.NewRecorder()
	e.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
}

func TestBodyIsCappedAndTyped(t *testing.T) {
	e := engine(Body(16, ReadProgress{}, quiet))
	send := func(ctype string, body io.Reader, length int64) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/api/query", body)
		r.ContentLength = length
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		return w
	}
	require.Equal(t, http.StatusOK, send("application/json; charset=utf-8", strings.NewReader(`{"a":1}`), 7).Code)
	require.Equal(t, http.StatusUnsupportedMediaType, send("text/plain", strings.NewReader(`{}`), 2).Code)
	require.Equal(t, http.StatusUnsupportedMediaType, send("", strings.NewReader(`{}`), 2).Code)
	require.Equal(t, http.StatusRequestEntityTooLarge, send("application/json", strings.NewReader(strings.Repeat("a", 17)), 17).Code)
	// Chunked: no Content-Length, the cap still holds.
	w := send("application/json", io.MultiReader(strings.NewReader(strings.Repeat("a", 10)), strings.NewReader(strings.Repeat("b", 10))), -1)
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Contains(t, w.Body.String(), `"error":"Request too large"`)
}

func TestShedRefusesBeyondTheCapImmediately(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), "test")
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	admit, _ := Shed(ShedConfig{Max: 2, PerAddress: 2, Metrics: m, Log: quiet})
	e.Use(RequestID(), admit)
	e.GET("/slow", func(c *gin.Context) { started <- struct{}{}; <-release; c.Status(http.StatusOK) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Get(srv.URL + "/slow"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	<-started
	<-started // both slots are taken now
	start := time.Now()
	resp, err := http.Get(srv.URL + "/slow")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Less(t, time.Since(start), time.Second, "refused at once, not queued")
	close(release)
	wg.Wait()
}

func TestRequestIDAcceptsOnlySaneIDs(t *testing.T) {
	e := engine()
	for in, keep := range map[string]bool{"abc-123_x.y": true, "": false, "<script>": false, strings.Repeat("a", 65): false, "a b": false} {
		r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		if in != "" {
			r.Header.Set("X-Request-ID", in)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		got := w.Header().Get("X-Request-ID")
		if keep {
			require.Equal(t, in, got)
		} else {
			require.True(t, strings.HasPrefix(got, "kw_"), "%q replaced by a generated id, got %q", in, got)
		}
	}
}
