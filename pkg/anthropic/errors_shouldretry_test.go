package anthropic

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAPIErrorKeepsTheUpstreamsShouldRetry(t *testing.T) {
	body := []byte(anthropicErr("overloaded_error", "Overloaded"))
	for in, want := range map[string]string{"False": "false", " true ": "true", "": "", "maybe": ""} {
		h := http.Header{}
		if in != "" {
			h.Set("x-should-retry", in)
		}
		require.Equal(t, want, parseAPIError(529, h, body, 0, "").ShouldRetry, "%q", in)
	}
}

func TestParseAPIErrorDropsAnEchoedKeyFromIdentifiers(t *testing.T) {
	const key = "mock-server-key-SERVERKEY-0123456789abcdef"
	h := http.Header{"Request-Id": {key}}
	body := []byte(`{"type":"error","error":{"type":"` + key + `","message":"invalid x-api-key: ` + key + `"},"request_id":"` + key + `"}`)
	e := parseAPIError(429, h, body, 0, key)
	require.Equal(t, "rate_limit_error", e.Type)
	require.Empty(t, e.RequestID)
	require.NotContains(t, e.Message, key)
	e = parseAPIError(400, http.Header{"Request-Id": {"sk-ant-api03-abc"}}, []byte(`{"type":"error","error":{"type":"sk-ant-api03-abc","message":"m"}}`), 0, key)
	require.Equal(t, "invalid_request_error", e.Type)
	require.Empty(t, e.RequestID)
}
