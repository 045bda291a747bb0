package anthropic

import (
	"net/http"
	"strings"
)

// DefaultVersion is sent as anthropic-version when the caller sent none.
const DefaultVersion = "2023-06-01"

// OutboundHeaders builds the headers of an upstream request from a caller's
// request by allowlist: anthropic-version (DefaultVersion when absent; passed
// through unchanged otherwise, since 2026-10-21 changes request semantics),
// every anthropic-beta value, accept, and content-type forced to
// application/json. Nothing else gets through — no credentials
// (x-api-key, Authorization, Cookie), no X-Forwarded-* (they would leak the
// user's IP), no hop-by-hop headers, and no header the caller named in
// Connection, which a proxy must drop.
func OutboundHeaders(in http.Header) http.Header {
	out := make(http.Header, 4)
	var hop map[string]bool
	for k, vs := range in {
		if !strings.EqualFold(k, "Connection") {
			continue
		}
		for _, v := range vs {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					if hop == nil {
						hop = make(map[string]bool)
					}
					hop[http.CanonicalHeaderKey(name)] = true
				}
			}
		}
	}
	for k, vs := range in {
		// Canonicalising also catches keys set on the map directly
		// ("x-api-key"); for canonical keys it does not allocate.
		ck := http.CanonicalHeaderKey(k)
		if hop[ck] || len(vs) == 0 {
			continue
		}
		switch ck {
		case "Anthropic-Version":
			if v := strings.TrimSpace(vs[0]); v != "" {
				out["Anthropic-Version"] = []string{v}
			}
		case "Anthropic-Beta":
			for _, v := range vs {
				if v = strings.TrimSpace(v); v != "" {
					out["Anthropic-Beta"] = append(out["Anthropic-Beta"], v)
				}
			}
		case "Accept":
			out["Accept"] = append([]string(nil), vs...)
		}
	}
	if len(out["Anthropic-Version"]) == 0 {
		out["Anthropic-Version"] = []string{DefaultVersion}
	}
	out["Content-Type"] = []string{"application/json"}
	return out
}

// CopyResponseHeaders copies the upstream response headers a caller may see,
// by allowlist: content-type (only a JSON or SSE media type) and request-id
// (only an identifier free of key material). Everything else stays behind,
// notably the anthropic-ratelimit-* headers (the organisation's limits are
// not the caller's), anthropic-organization-id / anthropic-workspace-id,
// retry-after (the gateway sets its own, capped) and set-cookie. Client
// has already redacted src; this is the second line of defence.
func CopyResponseHeaders(dst, src http.Header) {
	if v := src.Get("Content-Type"); v != "" {
		mt := strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		if mt == "application/json" || mt == "text/event-stream" {
			dst.Set("Content-Type", v)
		}
	}
	if v := (Redactor{}).Token(src.Get("Request-Id")); v != "" {
		dst.Set("Request-Id", v)
	}
}
