package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest server that counts the connections it accepted.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func post(t *testing.T, tr *Transport, ctx context.Context, url, body string, hdr http.Header) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return tr.RoundTrip(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	resp.Body.Close()
	return string(b)
}

func TestRoundTripReusesTheConnection(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Request-Id", "req_1")
		fmt.Fprintf(w, "%s %s host=%s len=%d key=%s ua=%s body=%s", r.Method, r.URL.RequestURI(), r.Host, r.ContentLength,
			r.Header.Get("X-Api-Key"), r.Header.Get("User-Agent"), b)
	})
	tr := New(Options{})
	defer tr.Close()
	for i := range 3 {
		resp, err := post(t, tr, context.Background(), srv.URL+"/v1/messages?beta=true", `{"n":1}`, http.Header{"X-Api-Key": {"k"}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got := readAll(t, resp)
		want := fmt.Sprintf(`POST /v1/messages?beta=true host=%s len=7 key=k ua=Go-http-client/1.1 body={"n":1}`, srv.Listener.Addr())
		if resp.StatusCode != 200 || got != want || resp.Header.Get("Request-Id") != "req_1" {
			t.Fatalf("request %d: %d %q, want %q", i, resp.StatusCode, got, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 sequential requests used %d connections, want 1 (kept alive)", n)
	}
	if n := tr.IdleConns(srv.Listener.Addr().String()); n != 1 {
		t.Fatalf("idle connections after the last body: %d, want 1", n)
	}
}

func TestLargeAndChunkedRequestBodies(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %d", len(b), r.TransferEncoding, bytes.Count(b, []byte("x")))
	})
	tr := New(Options{})
	defer tr.Close()
	big := strings.Repeat("x", 100<<10)
	resp, err := post(t, tr, context.Background(), srv.URL, big, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "102400 [] 102400" {
		t.Fatalf("100 KiB body: server saw %q", got)
	}
	// Unknown length: sent chunked.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader(strings.Repeat("x", 3))))
	req.ContentLength = -1
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "3 [chunked] 3" {
		t.Fatalf("chunked body: server saw %q", got)
	}
}

func TestStreamingBodyArrivesAsWritten(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: one\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "event: two\ndata: {}\n\n")
	})
	tr := New(Options{})
	defer tr.Close()
	resp, err := post(t, tr, context.Background(), srv.URL, "{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "event: one\ndata: {}\n\n" {
		t.Fatalf("first event: %q, %v", buf[:n], err)
	}
	close(release)
	if rest := readAll(t, resp); rest != "event: two\ndata: {}\n\n" {
		t.Fatalf("rest of the stream: %q", rest)
	}
	if n := tr.IdleConns(srv.Listener.Addr().String()); n != 1 {
		t.Fatalf("a fully read stream should free its connection; idle = %d", n)
	}
}

func TestServerClosedIdleConnectionIsNotReused(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := New(Options{})
	defer tr.Close()
	for i := range 3 {
		resp, err := post(t, tr, context.Background(), srv.URL, "{}", nil)
		if err != nil {
			t.Fatalf("request %d after the server closed its idle connections: %v", i, err)
		}
		if got := readAll(t, resp); got != "ok" {
			t.Fatalf("request %d: %q", i, got)
		}
		// The server drops every idle connection (as on a restart or its
		// idle timeout); the pooled one must be noticed, not written to.
		srv.CloseClientConnections()
		deadline := time.Now().Add(2 * time.Second)
		for peekable(t, tr, srv).alive() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("connections: %d, want 3 (one fresh one per request)", n)
	}
}

// peekable returns the prober of the pooled connection to srv without
// taking the connection out.
func peekable(t *testing.T, tr *Transport, srv *httptest.Server) *prober {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	list := tr.idle[srv.Listener.Addr().String()]
	if len(list) != 1 {
		t.Fatalf("idle connections: %d, want 1", len(list))
	}
	return list[0].probe
}

func TestUnreadBodyClosesTheConnection(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("a", 64<<10)) })
	tr := New(Options{})
	defer tr.Close()
	resp, err := post(t, tr, context.Background(), srv.URL, "{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, ErrBodyClosed) {
		t.Fatalf("read after close: %v, want ErrBodyClosed", err)
	}
	resp, err = post(t, tr, context.Background(), srv.URL, "{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); len(got) != 64<<10 {
		t.Fatalf("second answer: %d bytes", len(got))
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections: %d, want 2 (a half-read answer's connection is not reused)", n)
	}
}

func TestConnectionCloseAnswerIsNotPooled(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	tr := New(Options{})
	defer tr.Close()
	resp, err := post(t, tr, context.Background(), srv.URL, "{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "bye" {
		t.Fatalf("%q", got)
	}
	if n := tr.IdleConns(srv.Listener.Addr().String()); n != 0 {
		t.Fatalf("idle after Connection: close: %d, want 0", n)
	}
}

func TestCancelInterruptsABlockedRead(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "event: ping\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	tr := New(Options{})
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(t, tr, ctx, srv.URL, "{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = resp.Body.Read(buf)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("read after cancel: %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
	resp.Body.Close()
	if n := tr.IdleConns(srv.Listener.Addr().String()); n != 0 {
		t.Fatalf("a cancelled stream's connection was pooled")
	}
}

func TestCloseFromAnotherGoroutineInterruptsRead(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	tr := New(Options{})
	defer tr.Close()
	resp, err := post(t, tr, context.Background(), srv.URL, "{}", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { resp.Body.Close() })
	_, err = resp.Body.Read(make([]byte, 64))
	if !errors.Is(err, ErrBodyClosed) {
		t.Fatalf("read interrupted by Close: %v, want ErrBodyClosed", err)
	}
}

func TestCancelCauseWhileWaitingForHeaders(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	tr := New(Options{})
	defer tr.Close()
	cause := errors.New("header timer fired")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	_, err := post(t, tr, ctx, srv.URL, "{}", nil)
	if !errors.Is(err, cause) {
		t.Fatalf("RoundTrip error %v, want the context's cause", err)
	}
}

func TestBadHeadersAreRefusedBeforeSending(t *testing.T) {
	var hits atomic.Int32
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	tr := New(Options{})
	defer tr.Close()
	for _, h := range []http.Header{
		{"X-Evil": {"a\r\nX-Api-Key: stolen"}},
		{"X Bad": {"v"}},
		{"X-Nul": {"a\x00b"}},
	} {
		if _, err := post(t, tr, context.Background(), srv.URL, "{}", h); err == nil {
			t.Fatalf("header %v was sent", h)
		}
	}
	if _, err := tr.RoundTrip(&http.Request{Method: "POST", URL: mustURL(t, "https://example.invalid/"), Header: http.Header{}}); err == nil {
		t.Fatal("https URL accepted")
	}
	if hits.Load() != 0 {
		t.Fatalf("the server saw %d requests", hits.Load())
	}
}

func TestDialFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tr := New(Options{})
	if _, err := post(t, tr, context.Background(), "http://"+addr+"/", "{}", nil); err == nil {
		t.Fatal("a closed port answered")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.URL
}

func TestOversizedResponseHeadIsRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		// A head that never ends: 3 MiB of headers.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for range 3 << 10 {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	tr := New(Options{})
	defer tr.Close()
	_, err = post(t, tr, context.Background(), "http://"+l.Addr().String()+"/", "{}", nil)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a 3 MiB response head: %v, want a refusal", err)
	}
}

func TestLargeBodyAfterHeadIsNotLimited(t *testing.T) {
	big := strings.Repeat("b", 3<<20)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	tr := New(Options{})
	defer tr.Close()
	for i := range 2 {
		resp, err := post(t, tr, context.Background(), srv.URL, "{}", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); len(got) != len(big) {
			t.Fatalf("request %d: body %d bytes, want %d", i, len(got), len(big))
		}
	}
}
