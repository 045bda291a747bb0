package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeErr(t *testing.T, b []byte) anthropicError {
	t.Helper()
	var e anthropicError
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	require.Equal(t, "error", e.Type, string(b))
	return e
}

// On /v1/* an upstream error reaches the SDK as the upstream sent it, after
// exactly one upstream attempt: the SDK retries, the gateway does not.
func TestV1UpstreamErrorsPassThroughAsSent(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name, fault string
		code        int
		errType     string
		message     string
		retryAfter  string
		shouldRetry string
	}{
		{"429 with retry-after", `{"status":429,"retry_after":3,"message":"Number of request tokens has exceeded your per-minute rate limit"}`,
			429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", "3", "true"},
		{"529", `{"status":529}`, 529, "overloaded_error", "", "", "true"},
		{"500", `{"status":500,"message":"Internal server error"}`, 500, "api_error", "Internal server error", "", "true"},
		{"400 wording kept", `{"status":400,"message":"prompt is too long: 215000 tokens > 200000 maximum"}`,
			400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum", "", ""},
		{"403", `{"status":403}`, 403, "permission_error", "", "", ""},
		{"spend cap", `{"spend_limit":true}`, 429, "rate_limit_error", "", "", "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.mock.MockPost(t, "/_mock/reset", `{}`)
			h.mock.MockPost(t, "/_mock/faults", `{"queue":[`+tc.fault+`]}`)
			code, hdr, body := h.post("/v1/messages", message("claude-sonnet-4-5", "x"))
			require.Equal(t, tc.code, code, string(body))
			e := decodeErr(t, body)
			require.Equal(t, tc.errType, e.Error.Type)
			if tc.message != "" {
				require.Equal(t, tc.message, e.Error.Message)
			}
			require.True(t, strings.HasPrefix(hdr.Get("request-id"), "req_"), "the upstream's request-id header: %q", hdr.Get("request-id"))
			require.Equal(t, hdr.Get("request-id"), e.RequestID, "body request_id is the upstream's too")
			require.True(t, strings.HasPrefix(hdr.Get("X-Request-Id"), "kw_"), "the gateway's own id stays in X-Request-Id")
			if tc.retryAfter != "" {
				require.Equal(t, tc.retryAfter, hdr.Get("Retry-After"))
			}
			require.Equal(t, tc.shouldRetry, hdr.Get("X-Should-Retry"))
			require.Equal(t, 1, h.upstreamCalls(), "one upstream attempt per caller attempt")
		})
	}
}

func TestV1Upstream401BecomesA502(t *testing.T) {
	h := newHarness(t, map[string]string{"ANTHROPIC_API_KEY": "sk-ant-api03-revoked-key-000"})
	code, hdr, body := h.post("/v1/messages", message("claude-sonnet-4-5", "x"))
	require.Equal(t, http.StatusBadGateway, code, string(body))
	e := decodeErr(t, body)
	require.Equal(t, "api_error", e.Error.Type)
	require.Contains(t, e.Error.Message, "server key")
	require.NotContains(t, string(body), "revoked-key")
	require.Equal(t, hdr.Get("request-id"), e.RequestID)
	require.Contains(t, h.logs.String(), `"level":"ERROR"`)
	require.Contains(t, h.logs.String(), "could not authenticate")
}

// Every error the gateway writes itself names its request in request-id,
// which browsers may read (CORS exposes it).
func TestGatewayErrorsCarryRequestID(t *testing.T) {
	h := newHarness(t, nil)
	origin := "http://localhost:8501"
	for _, path := range []string{"/v1/messages", "/api/query"} {
		code, hdr, body := h.post(path, `{"model":`, "Origin", origin)
		require.Equal(t, http.StatusBadRequest, code, string(body))
		require.NotEmpty(t, hdr.Get("request-id"), path)
		require.Equal(t, hdr.Get("X-Request-Id"), hdr.Get("request-id"), path)
		require.Contains(t, string(body), hdr.Get("request-id"), path)
		require.Contains(t, strings.ToLower(hdr.Get("Access-Control-Expose-Headers")), "request-id", path)
	}
	code, hdr, _ := h.do(http.MethodGet, "/v1/models/claude-nonexistent-1", nil, "")
	require.Equal(t, http.StatusNotFound, code)
	require.NotEmpty(t, hdr.Get("request-id"))
}

func TestV1SendsTheUpstreamNothingTwiceButAPIRetries(t *testing.T) {
	h := newHarness(t, nil)
	h.mock.MockPost(t, "/_mock/reset", `{}`)
	h.mock.MockPost(t, "/_mock/faults", `{"queue":[{"status":529},{"status":529}]}`)
	code, _, body := h.post("/api/query", `{"question":"retry me","context":{}}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, 3, h.upstreamCalls(), "/api/* callers do not retry, so the gateway does")
}

func TestModelsAPIPaginates(t *testing.T) {
	h := newHarness(t, map[string]string{"KEYWARD_ALLOWED_MODELS": "claude-sonnet-4-5,claude-haiku-4-5,claude-opus-4-8,claude-opus-5-5,claude-sonnet-5-5"})
	type page struct {
		Data []struct {
			Type, ID, DisplayName string
			CreatedAt             string `json:"created_at"`
			MaxInputTokens        int64  `json:"max_input_tokens"`
			MaxTokens             int64  `json:"max_tokens"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}
	get := func(q string) page {
		code, _, b := h.do(http.MethodGet, "/v1/models"+q, nil, "")
		require.Equal(t, http.StatusOK, code, string(b))
		var p page
		require.NoError(t, json.Unmarshal(b, &p))
		return p
	}
	ids := func(p page) []string {
		var out []string
		for _, m := range p.Data {
			out = append(out, m.ID)
		}
		return out
	}
	all := get("")
	require.Equal(t, []string{"claude-opus-5-5", "claude-sonnet-5-5", "claude-opus-4-8", "claude-haiku-4-5", "claude-sonnet-4-5"}, ids(all), "newest first")
	require.False(t, all.HasMore)
	require.Equal(t, int64(1_000_000), all.Data[0].MaxInputTokens)
	require.Equal(t, int64(128_000), all.Data[0].MaxTokens)
	require.Equal(t, "2026-10-01T00:00:00Z", all.Data[0].CreatedAt)

	p1 := get("?limit=2")
	require.Equal(t, []string{"claude-opus-5-5", "claude-sonnet-5-5"}, ids(p1))
	require.True(t, p1.HasMore)
	require.Equal(t, "claude-opus-5-5", *p1.FirstID)
	require.Equal(t, "claude-sonnet-5-5", *p1.LastID)
	p2 := get("?limit=2&after_id=" + *p1.LastID)
	require.Equal(t, []string{"claude-opus-4-8", "claude-haiku-4-5"}, ids(p2))
	require.True(t, p2.HasMore)
	p3 := get("?limit=2&after_id=" + *p2.LastID)
	require.Equal(t, []string{"claude-sonnet-4-5"}, ids(p3))
	require.False(t, p3.HasMore)
	back := get("?limit=2&before_id=" + *p2.FirstID)
	require.Equal(t, ids(p1), ids(back))
	require.False(t, back.HasMore, "nothing before the first page")
	back = get("?limit=1&before_id=" + *p3.FirstID)
	require.Equal(t, []string{"claude-haiku-4-5"}, ids(back))
	require.True(t, back.HasMore)

	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=ten", "?after_id=gpt-4", "?after_id=claude-opus-5-5&before_id=claude-sonnet-4-5"} {
		code, _, b := h.do(http.MethodGet, "/v1/models"+bad, nil, "")
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Equal(t, "invalid_request_error", decodeErr(t, b).Error.Type, bad)
	}

	code, _, b := h.do(http.MethodGet, "/v1/models/claude-opus-4-8", nil, "")
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"display_name":"Claude Opus 4.8"`)
	require.Contains(t, string(b), `"type":"model"`)
	for _, id := range []string{"claude-fable-5-1", "gpt-4o"} {
		code, _, b = h.do(http.MethodGet, "/v1/models/"+id, nil, "")
		require.Equal(t, http.StatusNotFound, code, "%s is not allowed here", id)
		require.Equal(t, "not_found_error", decodeErr(t, b).Error.Type)
	}
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	return p
}

func TestAliasesRouteBeforeTheAllowlist(t *testing.T) {
	cfg := writeConfig(t, "models:\n  allowed: [claude-sonnet-4-5, claude-haiku-4-5]\n  aliases:\n    sonnet: claude-sonnet-4-5\n")
	h := newHarness(t, map[string]string{"KEYWARD_CONFIG": cfg})
	h.mock.MockPost(t, "/_mock/reset", `{}`)
	code, _, body := h.post("/v1/messages", message("sonnet", "routed"), "X-Claude-Code-Session-Id", "3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f")
	require.Equal(t, http.StatusOK, code, string(body))
	reqs := h.mock.Requests(t)
	require.Len(t, reqs, 1)
	require.Contains(t, reqs[0].Body, `"model":"claude-sonnet-4-5"`, "the upstream gets the model the alias names")
	require.Contains(t, reqs[0].Body, `"routed"`)
	require.Equal(t, []string{"keyward/test"}, reqs[0].Headers["User-Agent"], "the gateway's User-Agent, not the caller's")

	code, _, body = h.post("/v1/messages/count_tokens", `{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, code, string(body))

	code, _, body = h.post("/v1/messages", message("opus", "not an alias"))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, decodeErr(t, body).Error.Message, `"opus" is not allowed`)

	code, _, b := h.do(http.MethodGet, "/v1/models", nil, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), `"id":"sonnet"`, "aliases are listed for client model discovery")

	logs := h.logs.String()
	require.Contains(t, logs, `"model":"claude-sonnet-4-5","requested_model":"sonnet"`)
	require.Contains(t, logs, `"session_id":"3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f"`)
	require.Contains(t, h.metricsText(), `keyward_model_requests_total{model="claude-sonnet-4-5",requested_model="sonnet"} 1`)
}

func TestSessionIDIsBoundedInTheLog(t *testing.T) {
	h := newHarness(t, nil)
	long := strings.Repeat("a", 65)
	code, _, _ := h.post("/v1/messages", message("claude-sonnet-4-5", "x"), "X-Claude-Code-Session-Id", long)
	require.Equal(t, http.StatusOK, code)
	code, _, _ = h.post("/v1/messages", message("claude-sonnet-4-5", "x"), "X-Claude-Code-Session-Id", `a"b`)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, h.logs.String(), long)
	require.NotContains(t, h.logs.String(), `session_id`)
}

// Claude Code sends max_tokens 32000; by default the ceiling is the model's
// own maximum output, lowered only by models.max_tokens_cap.
func TestMaxTokensCeilingIsTheModelsMaximum(t *testing.T) {
	h := newHarness(t, nil)
	body := strings.Replace(message("claude-sonnet-4-5", "x"), `"max_tokens":64`, `"max_tokens":32000`, 1)
	code, _, b := h.post("/v1/messages", body)
	require.Equal(t, http.StatusOK, code, string(b))
	body = strings.Replace(message("claude-sonnet-4-5", "x"), `"max_tokens":64`, `"max_tokens":64001`, 1)
	code, _, b = h.post("/v1/messages", body)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, decodeErr(t, b).Error.Message, "64001 > 64000")

	capped := newHarness(t, map[string]string{"KEYWARD_CONFIG": writeConfig(t, "models:\n  max_tokens_cap: 8192\n")})
	body = strings.Replace(message("claude-sonnet-4-5", "x"), `"max_tokens":64`, `"max_tokens":32000`, 1)
	code, _, b = capped.post("/v1/messages", body)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, decodeErr(t, b).Error.Message, "32000 > 8192")
}

// An upstream that echoes the key it received into the error's type,
// request_id and message: the pass-through keeps the status and drops the
// key from every field and header.
func TestV1PassThroughNeverEchoesTheServerKey(t *testing.T) {
	h := newHarness(t, nil)
	for _, d := range []string{"status=429 echo_key_fields", "status=400 echo_key_fields", "status=529 echo_key_fields"} {
		code, hdr, body := h.post("/v1/messages", message("claude-sonnet-4-5", "x [[mock:"+d+"]]"))
		require.GreaterOrEqual(t, code, 400, d)
		require.NotEqual(t, http.StatusBadGateway, code, "%s: a non-401 status passes through", d)
		var all strings.Builder
		all.Write(body)
		for k, v := range hdr {
			all.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		require.NotContains(t, all.String(), "SERVERKEY", d)
		e := decodeErr(t, body)
		require.NotEmpty(t, e.Error.Type, d)
		require.NotEmpty(t, hdr.Get("request-id"), "%s: the gateway's id stands in for a dropped upstream id", d)
	}
}
