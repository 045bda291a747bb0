package httperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

func TestFromV1PassesUpstreamErrorsThrough(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          anthropic.APIError
		status      int
		errType     string
		shouldRetry string
		retryAfter  time.Duration
	}{
		{"429 keeps its retry-after", anthropic.APIError{Status: 429, Type: "rate_limit_error", Message: "slow down", RequestID: "req_1", RetryAfter: 7 * time.Second}, 429, "rate_limit_error", "true", 7 * time.Second},
		{"529 without retry-after gets 2s", anthropic.APIError{Status: 529, Type: "overloaded_error", Message: "Overloaded", RequestID: "req_2"}, 529, "overloaded_error", "true", 2 * time.Second},
		{"spend cap is not retried", anthropic.APIError{Status: 429, Type: "rate_limit_error", Message: "cap", RequestID: "req_3", SpendLimit: true}, 429, "rate_limit_error", "false", 0},
		{"400 as sent", anthropic.APIError{Status: 400, Type: "invalid_request_error", Message: "prompt is too long", RequestID: "req_4"}, 400, "invalid_request_error", "", 0},
		{"403 as sent", anthropic.APIError{Status: 403, Type: "permission_error", Message: "no", RequestID: "req_5"}, 403, "permission_error", "", 0},
		{"401 is the gateway's problem", anthropic.APIError{Status: 401, Type: "authentication_error", Message: "invalid x-api-key", RequestID: "req_6"}, 502, "api_error", "", 0},
		{"a 3xx is unexpected", anthropic.APIError{Status: 302, Type: "", Message: "Found", RequestID: "req_7"}, 502, "api_error", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			e := FromV1(fmt.Errorf("calling upstream: %w", &in))
			require.Equal(t, tc.status, e.Status)
			require.Equal(t, tc.errType, e.Type)
			require.Equal(t, tc.shouldRetry, e.ShouldRetry)
			require.Equal(t, tc.retryAfter, e.RetryAfter)
			if tc.status == http.StatusBadGateway {
				require.NotContains(t, e.Message, in.Message, "the upstream's words about our key are not the caller's business")
				if in.Status == 401 {
					require.Contains(t, e.Message, "server key")
				}
				return
			}
			require.Equal(t, in.Message, e.Message)
			require.Equal(t, in.RequestID, e.UpstreamRequestID)
		})
	}
}

func TestFromV1LeavesOtherErrorsToFrom(t *testing.T) {
	require.Equal(t, http.StatusBadGateway, FromV1(anthropic.ErrUpstreamConnection).Status)
	require.Equal(t, http.StatusInternalServerError, FromV1(errors.New("boom")).Status)
	inv := Invalid("bad")
	require.Same(t, inv, FromV1(inv))
}

func TestFromV1KeepsTheUpstreamsShouldRetry(t *testing.T) {
	e := FromV1(&anthropic.APIError{Status: 529, Type: "overloaded_error", Message: "x", ShouldRetry: "false"})
	require.Equal(t, "false", e.ShouldRetry)
	e = FromV1(&anthropic.APIError{Status: 409, Type: "conflict_error", Message: "x", ShouldRetry: "true"})
	require.Equal(t, "true", e.ShouldRetry)
}
