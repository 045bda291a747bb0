package anthropic

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewErrorBody(t *testing.T) {
	var got map[string]any
	require.NoError(t, json.Unmarshal(NewErrorBody("rate_limit_error", `quota "exceeded"`, "req_1"), &got))
	require.Equal(t, map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": "rate_limit_error", "message": `quota "exceeded"`},
		"request_id": "req_1",
	}, got)
	require.NotContains(t, string(NewErrorBody("api_error", "x", "")), "request_id")
}

func TestParseAPIError(t *testing.T) {
	const key = "sk-ant-api03-SERVERKEY_abc-123"
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   APIError
	}{
		{
			name:   "anthropic JSON with request-id header",
			status: 529,
			header: http.Header{"Request-Id": {"req_018EeWyXxfu5pfWkrYcMdjWG"}},
			body:   `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			want:   APIError{Status: 529, Type: "overloaded_error", Message: "Overloaded", RequestID: "req_018EeWyXxfu5pfWkrYcMdjWG"},
		},
		{
			name:   "request_id from the body when the header is missing",
			status: 404,
			body:   `{"type":"error","error":{"type":"not_found_error","message":"nope"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`,
			want:   APIError{Status: 404, Type: "not_found_error", Message: "nope", RequestID: "req_011CSHoEeqs5C35K2UUqR7Fy"},
		},
		{
			name:   "the server key echoed back is redacted",
			status: 401,
			body:   `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ` + key + ` (also sk-ant-admin01-OTHER)"}}`,
			want:   APIError{Status: 401, Type: "authentication_error", Message: "invalid x-api-key: [redacted] (also [redacted])"},
		},
		{
			name:   "tier spend cap",
			status: 429,
			body:   `{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}`,
			want:   APIError{Status: 429, Type: "rate_limit_error", Message: "spend limit", SpendLimit: true},
		},
		{
			name:   "user-set spend limit",
			status: 400,
			body:   `{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01."}}`,
			want:   APIError{Status: 400, Type: "invalid_request_error", Message: "You have reached your specified API usage limits. You will regain access on 2026-12-01.", SpendLimit: true},
		},
		{
			name:   "cloudflare HTML is not quoted",
			status: 413,
			body:   `<html><body>413 Request Entity Too Large ` + key + `</body></html>`,
			want:   APIError{Status: 413, Type: "request_too_large", Message: "upstream returned HTTP 413"},
		},
		{
			name:   "empty body",
			status: 502,
			want:   APIError{Status: 502, Type: "api_error", Message: "upstream returned HTTP 502"},
		},
		{
			name:   "hostile type and request id are dropped",
			status: 500,
			header: http.Header{"Request-Id": {"req\r\nSet-Cookie: x"}},
			body:   `{"type":"error","error":{"type":"api_error\u0000<script>","message":"line1\nline2"}}`,
			want:   APIError{Status: 500, Type: "api_error", Message: "line1 line2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			got := parseAPIError(tt.status, h, []byte(tt.body), 0, key)
			require.Equal(t, tt.want, *got)
			require.NotContains(t, got.Error(), "SERVERKEY")
			require.NotContains(t, got.Error(), "sk-ant-")
		})
	}
}

func TestAPIErrorMessageIsTruncatedAfterRedaction(t *testing.T) {
	const key = "mock-key-that-is-long"
	// The key straddles the truncation point: redacting after cutting would
	// leave half of it behind.
	msg := strings.Repeat("a", maxErrorMessage-8) + key + strings.Repeat("b", 1000)
	body, err := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": "api_error", "message": msg}})
	require.NoError(t, err)
	e := parseAPIError(500, http.Header{}, body, 3*time.Second, key)
	require.NotContains(t, e.Error(), "mock-key")
	require.NotContains(t, e.Error(), "mock-")
	require.LessOrEqual(t, len(e.Message), maxErrorMessage+len("…"))
	require.Equal(t, 3*time.Second, e.RetryAfter)
	require.Contains(t, e.Error(), "upstream returned 500 api_error")
}

func TestAPIErrorRetryable(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 413: false, 422: false,
		429: true, 500: true, 502: true, 503: true, 504: true, 529: true, 501: false,
	} {
		require.Equal(t, want, (&APIError{Status: status}).Retryable(), "status %d", status)
	}
	require.False(t, (&APIError{Status: 429, SpendLimit: true}).Retryable())
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"2"}}, 2 * time.Second},
		{"fractional seconds", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{"ms wins", http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{"bad ms falls back", http.Header{"Retry-After-Ms": {"soon"}, "Retry-After": {"3"}}, 3 * time.Second},
		{"http date", http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"negative", http.Header{"Retry-After": {"-4"}}, 0},
		{"garbage", http.Header{"Retry-After": {"tomorrow"}}, 0},
		{"absurd is capped", http.Header{"Retry-After": {"1e300"}}, maxRetryAfter},
		{"absurd ms is capped", http.Header{"Retry-After-Ms": {"1e300"}}, maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, parseRetryAfter(tt.header, now))
		})
	}
}

func TestTypeForStatus(t *testing.T) {
	for status, want := range map[int]string{
		400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
		404: "not_found_error", 409: "conflict_error", 413: "request_too_large", 429: "rate_limit_error",
		500: "api_error", 502: "api_error", 504: "timeout_error", 529: "overloaded_error", 418: "invalid_request_error",
		302: "invalid_request_error",
	} {
		require.Equal(t, want, typeForStatus(status), "status %d", status)
	}
}
