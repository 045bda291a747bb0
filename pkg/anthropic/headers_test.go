package anthropic

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOutboundHeadersAllowlist(t *testing.T) {
	hostile := http.Header{
		"X-Api-Key":           {"evil-caller-key"},
		"Authorization":       {"Bearer SENTINEL123"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Cookie":              {"session=abc"},
		"Connection":          {"keep-alive, x-api-key, Anthropic-Beta"},
		"Keep-Alive":          {"timeout=5"},
		"Transfer-Encoding":   {"chunked"},
		"Te":                  {"trailers"},
		"Upgrade":             {"h2c"},
		"Trailer":             {"X-Api-Key"},
		"X-Forwarded-For":     {"203.0.113.9"},
		"X-Forwarded-Host":    {"evil.example"},
		"X-Real-Ip":           {"203.0.113.9"},
		"Forwarded":           {"for=203.0.113.9"},
		"Host":                {"api.anthropic.com.evil.net"},
		"Content-Type":        {"text/plain"},
		"Content-Length":      {"999999"},
		"Anthropic-Version":   {"2026-10-21"},
		"Anthropic-Beta":      {"prompt-caching-2024-07-31"},
		"X-Foo":               {"bar"},
		"X-Stainless-Os":      {"Linux"},
		"User-Agent":          {"Anthropic/Python 0.121.0"},
		"Origin":              {"https://evil.example"},
		"Accept":              {"application/json"},
	}
	out := OutboundHeaders(hostile)
	require.Equal(t, http.Header{
		"Anthropic-Version": {"2026-10-21"},
		"Content-Type":      {"application/json"},
		"Accept":            {"application/json"},
		// anthropic-beta was named in Connection: a hop-by-hop header now.
	}, out)
}

func TestOutboundHeadersPassesVersionAndBetas(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"default version", http.Header{}, http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}},
		{"nil", nil, http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}},
		{"version kept", http.Header{"Anthropic-Version": {"2026-10-21"}}, http.Header{"Anthropic-Version": {"2026-10-21"}, "Content-Type": {"application/json"}}},
		{"every beta value", http.Header{"Anthropic-Beta": {"a-1,b-2", "c-3"}}, http.Header{
			"Anthropic-Version": {"2023-06-01"}, "Anthropic-Beta": {"a-1,b-2", "c-3"}, "Content-Type": {"application/json"}}},
		{"non-canonical keys", http.Header{"anthropic-version": {"2026-10-21"}, "x-api-key": {"evil"}}, http.Header{
			"Anthropic-Version": {"2026-10-21"}, "Content-Type": {"application/json"}}},
		{"empty version defaults", http.Header{"Anthropic-Version": {" "}}, http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, OutboundHeaders(tt.in))
		})
	}
}

func TestOutboundHeadersDoesNotAliasInput(t *testing.T) {
	in := http.Header{"Anthropic-Beta": {"a"}, "Accept": {"application/json"}}
	out := OutboundHeaders(in)
	out["Anthropic-Beta"][0] = "changed"
	out["Accept"][0] = "changed"
	require.Equal(t, "a", in.Get("Anthropic-Beta"))
	require.Equal(t, "application/json", in.Get("Accept"))
}

func TestCopyResponseHeaders(t *testing.T) {
	src := http.Header{
		"Content-Type":                           {"text/event-stream; charset=utf-8"},
		"Request-Id":                             {"req_018EeWyXxfu5pfWkrYcMdjWG"},
		"Anthropic-Ratelimit-Requests-Remaining": {"49"},
		"Anthropic-Ratelimit-Tokens-Reset":       {"2026-11-27T12:00:00Z"},
		"Anthropic-Organization-Id":              {"org-123"},
		"Anthropic-Workspace-Id":                 {"wrk-456"},
		"Set-Cookie":                             {"__cf_bm=abc"},
		"Cf-Ray":                                 {"8abc"},
		"Retry-After":                            {"3"},
		"Via":                                    {"1.1 google"},
		"Anthropic-Priority-Input-Tokens-Remaining": {"10"},
	}
	dst := http.Header{"X-Request-Id": {"gw-1"}}
	CopyResponseHeaders(dst, src)
	require.Equal(t, http.Header{
		"X-Request-Id": {"gw-1"},
		"Content-Type": {"text/event-stream; charset=utf-8"},
		"Request-Id":   {"req_018EeWyXxfu5pfWkrYcMdjWG"},
	}, dst)
}
