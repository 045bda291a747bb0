// Package mock is an offline emulator of the public Anthropic API, faithful enough that the
// official SDKs cannot tell it from the real one, for development, tests, load runs and demos.
//
// # API
//
//	POST /v1/messages                JSON, or SSE with "stream": true
//	POST /v1/messages/count_tokens   {"input_tokens": N}
//	GET  /v1/models                  list with data, has_more, first_id, last_id (limit, after_id, before_id)
//	GET  /v1/models/{model_id}
//
// Every response carries request-id (req_…) and anthropic-organization-id; every error is
// {"type":"error","error":{"type":…,"message":…},"request_id":"req_…"}. Checks run in the
// real API's order: path and method (404, 405), body size (413 request_too_large, 32 MB),
// credential (401: x-api-key, or Authorization: Bearer, must equal the configured key),
// anthropic-version (400 unless 2023-06-01 or 2026-10-21), body validation (400 naming the
// field), model (404 "model: …"). With 2026-10-21, temperature, top_p and top_k are rejected.
//
// Answers are deterministic: they name the model, the system prompt's length in characters
// and the number of messages, and quote the last user message (up to 300 bytes). A token is
// ceil(bytes/4) of the prompt text (non-text blocks and tools count by their JSON size).
// Blocks with cache_control are billed like the real prompt cache: the first time this
// process sees a prefix it is a cache write (split into 5m and 1h by cache_control.ttl),
// later a cache read while its TTL lasts; input_tokens counts what follows the last breakpoint.
//
// # Directives
//
// A test steers one call by putting directives in the text of the last user message, the
// only place a gateway forwards unchanged:
//
//	directive = "[[mock:" item { " " item } "]]"
//	item      = key [ "=" value ]
//
// Several directives may appear; later items win. An unknown key or bad value is a 400.
//
//	status=N          answer with error status N (400-599; 200 means no fault)
//	error_type=T      error.type for status or error_after (default: the real one for N)
//	retry_after=S     retry-after header, whole seconds
//	retry_after_ms=M  retry-after-ms header
//	should_retry=B    x-should-retry header (true or false)
//	spend_limit       429 with error.details.error_code "enforced_spend_limit_reached", no retry-after
//	first_byte_ms=M   wait M ms before the response starts
//	event_delay_ms=M  wait M ms between SSE events
//	error_after=N     after N SSE events, send an error event (overloaded_error) and end the stream
//	drop_after=N      after N SSE events, close the connection without finishing the response
//	usage_deltas=N    end the stream with N message_delta events of cumulative usage
//	output_tokens=N   make the answer exactly N tokens long (before max_tokens cuts it)
//	echo_key          answer 401 with the received key in the message (to prove a proxy hides it)
//	hang              never answer; return only when the client goes away
//
// For example "Summarise this. [[mock:status=429 retry_after=2]]". count_tokens honours the
// directives that do not need a reply (status…, first_byte_ms, hang, echo_key).
//
// # Admin API
//
// Under /_mock/ on the same listener, without a credential (a gateway only forwards /v1/):
//
//	POST   /_mock/faults    {"queue":[{"status":529},{"status":529}]} appends one-shot faults, each
//	                        taking effect on one later /v1/messages call that passes validation;
//	                        entries take the directive keys above as JSON fields (plus "message")
//	GET    /_mock/faults    the pending queue;  DELETE clears it
//	POST   /_mock/config    defaults for every /v1/messages call, same fields (replaces the previous)
//	GET    /_mock/config    the current defaults
//	GET    /_mock/requests  the last 1000 API requests as received: method, path, query, headers,
//	                        body, status, outcome (?path=/v1/messages&limit=N);  DELETE clears
//	GET    /_mock/stats     requests by path and status, cancelled, dropped, stream_errors,
//	                        faults_injected, streams, open_streams, in_flight, faults_pending
//	POST   /_mock/reset     clears queue, requests, counters and prompt cache; restores start-up defaults
//	GET    /_mock/health    {"status":"ok"}
//
// For each call the configured defaults, then the next queued fault, then the prompt's
// directives apply, each overriding the fields the one before set. Unknown JSON fields in
// admin bodies are rejected so a typo cannot pass silently.
package mock
