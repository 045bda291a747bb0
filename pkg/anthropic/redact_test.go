package anthropic

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactorKeepsTheKeyOutOfEveryUpstreamField(t *testing.T) {
	const key = "mock-key-0123456789"
	h := http.Header{
		"Request-Id":         {"req_" + key},
		"X-Echo":             {"Bearer " + key, "fine"},
		"X-" + key:           {"1"},
		"Anthropic-Other-Id": {"sk-ant-api03-LEAKED"},
		"Content-Type":       {"application/json"},
	}
	body := `{"type":"error","error":{"type":"` + key + `","message":"bad key ` + key + `"},"request_id":"req_` + key + `"}`
	NewRedactor(key).Headers(h)
	e := parseAPIError(http.StatusBadRequest, h, []byte(body), 0, key)

	all := fmt.Sprint(h) + e.Error() + e.Type + e.Message + e.RequestID
	require.NotContains(t, all, key)
	require.NotContains(t, all, "sk-ant-api03")
	require.Equal(t, "invalid_request_error", e.Type, "an error type carrying the key falls back to the status's type")
	require.Empty(t, e.RequestID, "a request id carrying the key is dropped")
	require.Equal(t, "bad key [redacted]", e.Message)
	require.Equal(t, []string{"Bearer [redacted]", "fine"}, h["X-Echo"])

	out := http.Header{}
	CopyResponseHeaders(out, h)
	require.Equal(t, http.Header{"Content-Type": {"application/json"}}, out, "allowlist only, no redacted request id")
}

func TestRedactorBytesAndTokens(t *testing.T) {
	r := NewRedactor("k3y-secret")
	clean := []byte("data: {\"type\":\"ping\"}\n\n")
	require.Same(t, &clean[0], &r.Bytes(clean)[0], "clean bytes are returned as they are")
	got := string(r.Bytes([]byte("data: k3y-secret and sk-ant-api03-x_y-z\n")))
	require.Equal(t, "data: [redacted] and [redacted]\n", got)
	require.Equal(t, "req_011CXyz", r.Token("req_011CXyz"))
	require.Empty(t, r.Token("a b"))
	require.Empty(t, r.Token("sk-ant-api03-abc"))
	require.Empty(t, Redactor{}.Token(strings.Repeat("a", 200)))
}

func ExampleRedactor() {
	r := NewRedactor("sk-ant-api03-SERVER")
	fmt.Println(r.Message("invalid x-api-key sk-ant-api03-SERVER"))
	fmt.Printf("%q\n", r.Token("sk-ant-api03-SERVER"))
	// Output:
	// invalid x-api-key [redacted]
	// ""
}

func TestContainsString(t *testing.T) {
	for _, tc := range []struct {
		b, s string
		want bool
	}{
		{"xxmock-keyxx", "mock-key", true},
		{"mock-kemock-key", "mock-key", true},
		{"mock-ke", "mock-key", false},
		{"mmmmmmmmmmmm", "mock-key", false},
		{"", "k", false},
	} {
		require.Equal(t, tc.want, containsString([]byte(tc.b), tc.s), "%q in %q", tc.s, tc.b)
	}
	r := NewRedactor("mock-server-key-SERVERKEY-0123456789abcdef")
	line := []byte(strings.Repeat("some text with many s and m letters ", 100))
	require.Zero(t, testing.AllocsPerRun(100, func() { r.Bytes(line) }), "a clean line costs no allocation")
}
