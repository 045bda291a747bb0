package mock

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

func TestParseDirectives(t *testing.T) {
	tests := []struct {
		text    string
		want    Directives
		wantErr string
	}{
		{"no directive here", Directives{}, ""},
		{"[[mock:status=529]]", Directives{Status: 529}, ""},
		{"please [[mock:status=429 retry_after=2]] thanks", Directives{Status: 429, RetryAfter: ptr(2)}, ""},
		{"[[mock:retry_after=0 retry_after_ms=250 should_retry=false]]", Directives{RetryAfter: ptr(0), RetryAfterMs: ptr(250), ShouldRetry: ptr(false)}, ""},
		{"[[mock:first_byte_ms=300]] and [[mock:event_delay_ms=50]]", Directives{FirstByteMs: 300, EventDelayMs: 50}, ""},
		{"[[mock:error_after=3 error_type=api_error]]", Directives{ErrorAfter: ptr(3), ErrorType: "api_error"}, ""},
		{"[[mock:drop_after=0]]", Directives{DropAfter: ptr(0)}, ""},
		{"[[mock:usage_deltas=3 output_tokens=300]]", Directives{UsageDeltas: 3, OutputTokens: 300}, ""},
		{"[[mock:echo_key]]", Directives{EchoKey: true}, ""},
		{"[[mock:hang]]", Directives{Hang: true}, ""},
		{"[[mock:spend_limit]]", Directives{SpendLimit: true}, ""},
		{"[[mock:spend_limit=true hang=false]]", Directives{SpendLimit: true}, ""},
		{"[[mock: status=500\n\tretry_after=1 ]]", Directives{Status: 500, RetryAfter: ptr(1)}, ""},
		{"[[mock:status=500]] [[mock:status=503]]", Directives{Status: 503}, ""},
		{"[[mock:]]", Directives{}, ""},
		{"[[mock:nope=1]]", Directives{}, `unknown key "nope"`},
		{"[[mock:status]]", Directives{}, "status: needs a value"},
		{"[[mock:status=abc]]", Directives{}, `status="abc": want a whole number`},
		{"[[mock:status=302]]", Directives{}, "status 302: must be 200 or 400-599"},
		{"[[mock:status=700]]", Directives{}, "status 700"},
		{"[[mock:first_byte_ms=-1]]", Directives{}, "first_byte_ms -1"},
		{"[[mock:first_byte_ms=9999999]]", Directives{}, "first_byte_ms 9999999"},
		{"[[mock:error_type=Bad-Type]]", Directives{}, "error_type"},
		{"[[mock:error_type]]", Directives{}, "error_type: needs a value"},
		{"[[mock:hang=maybe]]", Directives{}, "want true or false"},
		{"[[mock:retry_after=-5]]", Directives{}, "retry_after -5"},
		{"[[mock:usage_deltas=5000]]", Directives{}, "usage_deltas 5000"},
		{"[[mock:status=529", Directives{}, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := parseDirectives(tt.text)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDirectivesMergeAndFault(t *testing.T) {
	defaults := Directives{FirstByteMs: 100, EventDelayMs: 10, Status: 500}
	queued := Directives{Status: 529, RetryAfter: ptr(1)}
	prompt := Directives{Status: 200, FirstByteMs: 5}

	got := defaults.merge(&queued).merge(&prompt)
	require.Equal(t, Directives{Status: 200, FirstByteMs: 5, EventDelayMs: 10, RetryAfter: ptr(1)}, got,
		"later sources override only the fields they set")
	require.Nil(t, got.fault(), "status 200 means no fault")

	tests := []struct {
		d       Directives
		status  int
		errType string
		msg     string
	}{
		{Directives{Status: 529}, 529, errOverloaded, "Overloaded"},
		{Directives{Status: 500}, 500, errAPI, "Internal server error"},
		{Directives{Status: 503}, 503, errAPI, ""},
		{Directives{Status: 504}, 504, errTimeout, ""},
		{Directives{Status: 429}, 429, errRateLimit, "rate limit"},
		{Directives{Status: 400}, 400, errInvalidRequest, ""},
		{Directives{Status: 401}, 401, errAuthentication, ""},
		{Directives{Status: 402}, 402, errBilling, ""},
		{Directives{Status: 403}, 403, errPermission, ""},
		{Directives{Status: 404}, 404, errNotFound, ""},
		{Directives{Status: 409}, 409, errConflict, ""},
		{Directives{Status: 413}, 413, errRequestTooLarge, ""},
		{Directives{Status: 418}, 418, errInvalidRequest, ""},
		{Directives{Status: 500, ErrorType: "overloaded_error", Message: "custom"}, 500, errOverloaded, "custom"},
		{Directives{SpendLimit: true, Status: 529}, 429, errRateLimit, "usage limit"},
	}
	for _, tt := range tests {
		e := tt.d.fault()
		require.NotNil(t, e)
		require.Equal(t, tt.status, e.status)
		require.Equal(t, tt.errType, e.errType)
		require.Contains(t, e.message, tt.msg)
	}
}
