package auth

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name        string
		h           http.Header
		allowAPIKey bool
		token       string
		present     bool
	}{
		{"none", http.Header{}, true, "", false},
		{"bearer", http.Header{"Authorization": {"Bearer abc.def.ghi"}}, false, "abc.def.ghi", true},
		{"scheme case-insensitive", http.Header{"Authorization": {"bEaReR abc"}}, false, "abc", true},
		{"extra spaces", http.Header{"Authorization": {"  Bearer   abc  "}}, false, "abc", true},
		{"basic is present but unusable", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, false, "", true},
		{"bearer without token", http.Header{"Authorization": {"Bearer"}}, false, "", true},
		{"empty authorization", http.Header{"Authorization": {""}}, false, "", true},
		{"two authorization headers", http.Header{"Authorization": {"Bearer a", "Bearer b"}}, false, "", true},
		{"x-api-key ignored unless allowed", http.Header{"X-Api-Key": {"tok"}}, false, "", false},
		{"x-api-key allowed", http.Header{"X-Api-Key": {"tok"}}, true, "tok", true},
		{"authorization wins over x-api-key", http.Header{"Authorization": {"Bearer a"}, "X-Api-Key": {"b"}}, true, "a", true},
		{"two x-api-keys", http.Header{"X-Api-Key": {"a", "b"}}, true, "", true},
		{"underscore header is not x-api-key", http.Header{"X_api_key": {"tok"}}, true, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, present := BearerToken(tc.h, tc.allowAPIKey)
			require.Equal(t, tc.token, tok)
			require.Equal(t, tc.present, present)
		})
	}
}

func TestBearerTokenNeverFromQuery(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "http://gw.test/api/query?access_token=abc&api_key=def", nil)
	require.NoError(t, err)
	tok, present := BearerToken(req.Header, true)
	require.False(t, present)
	require.Empty(t, tok)
}
