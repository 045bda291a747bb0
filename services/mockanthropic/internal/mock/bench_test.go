package mock

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchWriter is a minimal ResponseWriter that discards output and can flush, so the
// benchmarks measure the handler rather than httptest.ResponseRecorder's buffering.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(s int)   { w.status = s }
func (w *benchWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}
func (w *benchWriter) Flush() {}

func benchRequest(b *testing.B, stream bool) {
	s, err := New(Options{APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	extra := []string{`"system":"You are a careful SaaS analytics assistant."`}
	if stream {
		extra = append(extra, `"stream":true`)
	}
	payload := body("Analyse monthly recurring revenue for the last 30 days and list the three biggest movers.", extra...)
	w := &benchWriter{h: make(http.Header, 8)}
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("anthropic-version", Version2023)
	rd := strings.NewReader(payload)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		rd.Reset(payload)
		req.Body = readCloser{rd}
		req.ContentLength = int64(len(payload))
		clear(w.h)
		s.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

func BenchmarkMessagesJSON(b *testing.B)   { benchRequest(b, false) }
func BenchmarkMessagesStream(b *testing.B) { benchRequest(b, true) }

// BenchmarkMessagesStreamHTTP measures a streamed call over a real loopback connection,
// closer to what a load run through the gateway sees.
func BenchmarkMessagesStreamHTTP(b *testing.B) {
	_, base := newTestServer(b, Options{})
	payload := streamBody("Analyse churn by cohort.")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(payload))
			req.Header.Set("x-api-key", testKey)
			req.Header.Set("anthropic-version", Version2023)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			buf := make([]byte, 4096)
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					break
				}
			}
			resp.Body.Close()
		}
	})
}
