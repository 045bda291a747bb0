package mock

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLongLine(t *testing.T) {
	s, base := newTestServer(t, Options{})
	const n = 5 << 20
	resp, err := http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody("x [[mock:long_line=5242880]]")))
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var events []string
	var long []byte
	for {
		var size int
		var head []byte
		for {
			chunk, err := r.ReadSlice('\n')
			if len(head) < 64 {
				head = append(head, chunk[:min(len(chunk), 64-len(head))]...)
			}
			size += len(chunk)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				require.Zero(t, size, "the stream ends with a complete line")
				goto done
			}
			require.NoError(t, err)
			break
		}
		if strings.HasPrefix(string(head), "event: ") {
			events = append(events, strings.TrimSpace(string(head[7:])))
		}
		if size-1 == n {
			long = head
		}
	}
done:
	require.NotNil(t, long, "one line of exactly %d bytes", n)
	require.True(t, strings.HasPrefix(string(long), `data: {"type":"ping","padding":"ppp`), string(long))
	require.Equal(t, "message_start", events[0])
	require.Equal(t, "ping", events[1], "right after message_start")
	require.Equal(t, "message_stop", events[len(events)-1], "then the normal stream")

	// With drop_after=2 the connection closes right after the line.
	resp, err = http.DefaultClient.Do(apiRequest(t, "POST", base+"/v1/messages", streamBody("x [[mock:long_line=100000 drop_after=2]]")))
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, 2, strings.Count(string(b), "event: "))
	require.True(t, strings.HasSuffix(string(b), "\"}\n\n"))

	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:long_line=100000]]"))), 400, errInvalidRequest)
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("x [[mock:long_line=536870913]]"))), 400, errInvalidRequest)
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("x [[mock:long_line=10]]"))), 400, errInvalidRequest)
}

func TestEchoKeyHeadersAndFields(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:echo_key_headers]]")))
	decodeMessage(t, rec)
	for _, h := range []string{"request-id", "anthropic-organization-id", "anthropic-workspace-id", "x-echo", "cf-ray", "server-timing"} {
		require.Equal(t, testKey, rec.Header().Get(h), h)
	}
	// The same on an error answer and on count_tokens.
	rec = serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:echo_key_headers status=529]]")))
	require.Equal(t, 529, rec.Code)
	require.Equal(t, testKey, rec.Header().Get("request-id"))
	rec = serve(s, apiRequest(t, "POST", "/v1/messages/count_tokens", body("x [[mock:echo_key_headers]]")))
	require.Equal(t, 200, rec.Code)
	require.Equal(t, testKey, rec.Header().Get("x-echo"))

	for _, tt := range []struct {
		directive string
		status    int
	}{{"echo_key_fields", 401}, {"echo_key_fields status=429", 429}, {"echo_key_fields status=500", 500}} {
		rec = serve(s, apiRequest(t, "POST", "/v1/messages", body("x [[mock:"+tt.directive+"]]")))
		require.Equal(t, tt.status, rec.Code)
		var e struct {
			Error struct {
				Type, Message, Param string
				Details              struct {
					ErrorCode string `json:"error_code"`
				}
			}
			RequestID string `json:"request_id"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
		require.Equal(t, testKey, e.Error.Type)
		require.Contains(t, e.Error.Message, testKey)
		require.Equal(t, testKey, e.Error.Param)
		require.Equal(t, testKey, e.Error.Details.ErrorCode)
		require.Equal(t, testKey, e.RequestID)
		require.Equal(t, Billed{Speed: "standard"}, lastBilled(t, s), "an error answer bills nothing")
	}

	// On a stream with error_after, the mid-stream error event carries the key instead.
	rec = serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("x [[mock:echo_key_fields error_after=3]]")))
	require.Equal(t, 200, rec.Code)
	events := parseSSE(t, rec.Body.Bytes())
	last := events[len(events)-1]
	require.Equal(t, "error", last.Name)
	require.Equal(t, testKey, last.Data["error"].(map[string]any)["type"])
	require.Equal(t, testKey, last.Data["request_id"])
}
