// Package anthropic is keyward's side of the Anthropic Messages API: the
// request fields the gateway inspects, Anthropic's error shape, usage
// metering from SSE streams and JSON bodies, prices, the header allowlists of
// the passthrough, and a resilient upstream client (bounded retries with
// jitter, header timeout, circuit breaker) that is the only thing in keyward
// that ever holds the server's API key in an outbound request.
//
// The package never imports gin; the gateway maps its errors to HTTP:
//
//	*APIError            an upstream non-2xx, already redacted and truncated
//	ErrCircuitOpen       breaker open: answer 503 with Retry-After
//	ErrUpstreamTimeout   no response headers in time: answer 504
//	ErrUpstreamConnection the upstream could not be reached: answer 502
//	*RequestError        a malformed caller body: answer 400 naming the field
package anthropic
