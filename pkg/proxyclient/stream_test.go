package proxyclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sseServer answers POST /api/query with the given raw SSE text, flushing
// after every event so the client really reads it piece by piece.
func sseServer(t *testing.T, events ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, ev := range events {
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func readAll(t *testing.T, s *Stream) []string {
	t.Helper()
	var out []string
	for s.Next() {
		out = append(out, s.Text())
	}
	return out
}

func TestStreamYieldsDeltasInOrderThenUsage(t *testing.T) {
	srv := sseServer(t,
		": ping\n\n",
		"event: delta\ndata: {\"text\":\"Your MRR \"}\n\n",
		"event: progress\ndata: {\"pct\":50}\n\n", // unknown: skipped
		"event: delta\ndata: {\"text\":\"grew \"}\n\n",
		"event: delta\r\ndata: {\"text\":\"\"}\r\n\r\n", // empty delta, CRLF lines
		"event: delta\ndata: {\"text\":\"5.6%.\"}\n\n",
		"event: done\ndata: {\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":40,\"output_tokens\":9},\"request_id\":\"req-7\"}\n\n",
	)
	c, _ := newTestClient(t, srv.URL)
	s, err := c.QueryStream(context.Background(), QueryRequest{Question: "What is my MRR?"})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, []string{"Your MRR ", "grew ", "5.6%."}, readAll(t, s))
	require.NoError(t, s.Err())
	require.Equal(t, &StreamDone{Model: "claude-sonnet-4-5", Usage: Usage{InputTokens: 40, OutputTokens: 9}, RequestID: "req-7"}, s.Final())
	require.False(t, s.Next(), "a finished stream stays finished")
}

func TestStreamRequestsAskForSSE(t *testing.T) {
	var path, body, accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		path, body, accept = r.URL.Path, string(b), r.Header.Get("Accept")
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: delta\ndata: {\"text\":\"ok\"}\n\nevent: done\ndata: {}\n\n")
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)

	s, err := c.QueryStream(context.Background(), QueryRequest{Question: "q"})
	require.NoError(t, err)
	text, err := s.Collect()
	require.NoError(t, err)
	require.Equal(t, "ok", text)
	require.Equal(t, "/api/query", path)
	require.JSONEq(t, `{"question":"q","context":{},"stream":true}`, body)
	require.Equal(t, "text/event-stream", accept)

	s, err = c.AnalyticsQueryStream(context.Background(), "churn_analysis", map[string]any{"time_period": "last_90_days"})
	require.NoError(t, err)
	text, err = s.Collect()
	require.NoError(t, err)
	require.Equal(t, "ok", text)
	require.Equal(t, "/api/analytics-query", path)
	require.JSONEq(t, `{"query_type":"churn_analysis","parameters":{"time_period":"last_90_days"},"stream":true}`, body)
}

func TestStreamErrors(t *testing.T) {
	tests := []struct {
		name      string
		events    []string
		wantText  []string
		check     func(t *testing.T, err error)
		wantFinal bool
	}{
		{
			name:     "error event from the gateway",
			events:   []string{"event: delta\ndata: {\"text\":\"Hal\"}\n\n", "event: error\ndata: {\"error\":\"Upstream error\",\"message\":\"the Claude API reported an error mid-stream\",\"request_id\":\"req-5\"}\n\n"},
			wantText: []string{"Hal"},
			check: func(t *testing.T, err error) {
				var perr *Error
				require.ErrorAs(t, err, &perr)
				require.Equal(t, 0, perr.Status)
				require.Equal(t, "Upstream error", perr.Code)
				require.Equal(t, "the Claude API reported an error mid-stream", perr.Message)
				require.Equal(t, "req-5", perr.RequestID)
			},
		},
		{
			name:     "connection closes before done",
			events:   []string{"event: delta\ndata: {\"text\":\"Hal\"}\n\n"},
			wantText: []string{"Hal"},
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			},
		},
		{
			name:   "malformed delta",
			events: []string{"event: delta\ndata: {text}\n\n"},
			check: func(t *testing.T, err error) {
				require.ErrorContains(t, err, "decoding delta event")
			},
		},
		{
			name:   "over-long line",
			events: []string{"event: delta\ndata: " + strings.Repeat("x", maxEventBytes+10) + "\n\n"},
			check: func(t *testing.T, err error) {
				require.ErrorContains(t, err, "reading answer stream")
			},
		},
		{
			name:     "multi-line data is joined",
			events:   []string{"event: delta\ndata: {\"text\":\ndata: \"a\"}\n\n", "event: done\ndata: {\"request_id\":\"r\"}\n\n"},
			wantText: []string{"a"},
			check: func(t *testing.T, err error) {
				require.NoError(t, err)
			},
			wantFinal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, sseServer(t, tt.events...).URL)
			s, err := c.QueryStream(context.Background(), QueryRequest{Question: "q"})
			require.NoError(t, err)
			defer s.Close()
			require.Equal(t, tt.wantText, readAll(t, s))
			tt.check(t, s.Err())
			require.Equal(t, tt.wantFinal, s.Final() != nil)
		})
	}
}

func TestStreamRefusalBeforeStartIsRetriedThenTyped(t *testing.T) {
	gw := newScripted(t,
		reply{status: 429, headers: map[string]string{"Retry-After": "1"}, body: `{"error":"rate_limited"}`},
		reply{status: 400, body: `{"error":"validation_error","message":"question is too long"}`})
	c, clk := newTestClient(t, gw.srv.URL)
	_, err := c.QueryStream(context.Background(), QueryRequest{Question: "q"})
	var perr *Error
	require.ErrorAs(t, err, &perr)
	require.Equal(t, 400, perr.Status)
	require.Equal(t, []time.Duration{time.Second}, clk.recorded())
}

func TestStreamFallsBackToJSONAnswer(t *testing.T) {
	gw := newScripted(t, reply{status: 200, body: okAnswer})
	c, _ := newTestClient(t, gw.srv.URL)
	s, err := c.QueryStream(context.Background(), QueryRequest{Question: "q"})
	require.NoError(t, err)
	text, err := s.Collect()
	require.NoError(t, err)
	require.Equal(t, "MRR grew 5.6%.", text)
	require.Equal(t, int64(7), s.Final().Usage.OutputTokens)
}

func TestStreamCancellationEndsReadPromptly(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: delta\ndata: {\"text\":\"first\"}\n\n")
		w.(http.Flusher).Flush()
		select { // a stalled upstream
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	c, _ := newTestClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.QueryStream(ctx, QueryRequest{Question: "q"})
	require.NoError(t, err)
	require.True(t, s.Next())
	require.Equal(t, "first", s.Text())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	require.False(t, s.Next())
	require.Less(t, time.Since(start), time.Second)
	require.ErrorIs(t, s.Err(), context.Canceled)
	require.Nil(t, s.Final())
}

func TestStreamCloseEarlyDisconnects(t *testing.T) {
	disconnected := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := io.WriteString(w, "event: delta\ndata: {\"text\":\"x\"}\n\n"); err != nil {
				close(disconnected)
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(disconnected)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)
	s, err := c.QueryStream(context.Background(), QueryRequest{Question: "q"})
	require.NoError(t, err)
	require.True(t, s.Next())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	select {
	case <-disconnected:
	case <-time.After(2 * time.Second):
		t.Fatal("the gateway did not see the client go away")
	}
	require.False(t, s.Next())
	require.True(t, errors.Is(s.Err(), errClosed))
}
