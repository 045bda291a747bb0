package auth

import (
	"net/http"
	"strings"
)

// BearerToken extracts the caller's credential from the Authorization header
// ("Bearer <token>", scheme case-insensitive) or, when allowXAPIKey, from
// x-api-key (what Anthropic SDKs send). present reports whether the caller
// sent a credential at all: present with an empty token means one was sent
// but is unusable (another scheme, several headers, empty), which must be a
// 401 and never anonymous access. Query strings are never consulted: tokens
// there leak into logs and Referer headers (RFC 6750 §5.3).
func BearerToken(h http.Header, allowXAPIKey bool) (token string, present bool) {
	if vals := h.Values("Authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return "", true
		}
		scheme, rest, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", true
		}
		return strings.TrimSpace(rest), true
	}
	if allowXAPIKey {
		if vals := h.Values("X-Api-Key"); len(vals) > 0 {
			if len(vals) > 1 {
				return "", true
			}
			return strings.TrimSpace(vals[0]), true
		}
	}
	return "", false
}
