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
// # Request features and what they bill
//
// Input the body names but does not contain is billed as the real API would:
//   - an image with a base64 source: ceil(width × height / 750) tokens, the size read from its
//     PNG, JPEG, GIF or WebP header (an unreadable header counts by JSON size); an image by
//     URL or file id: the same for image_size (default 1092x1092, so 1590 tokens);
//   - a document with source.type "url" or "file": doc_pages × doc_page_tokens (default
//     10 × 3000); base64 and text documents count by their JSON size;
//   - mcp_servers or container (skills, code execution): server_input_tokens (default 2000),
//     once per call, in input_tokens from message_start on.
//
// thinking {type "enabled", budget_tokens ≥ 1024 and < max_tokens} or {type "adaptive"} puts
// a thinking block first: with display "summarized" (the default) a short summary in
// thinking_delta pieces then one signature_delta; with "omitted" only the signature_delta.
// Its billed size is thinking_tokens (default budget_tokens/2, or min(1024, max_tokens/2)
// for adaptive), counted in output_tokens and usage.output_tokens_details.thinking_tokens
// although not shown; it comes out of max_tokens first. speed ("standard" or "fast") and
// inference_geo are echoed in usage.speed and usage.inference_geo. A request declaring a
// web_search_* or web_fetch_* server tool gets usage.server_tool_use.
//
// A reply's content is, in order: thinking or redacted_thinking; per web search a
// server_tool_use (input streamed as input_json_delta) and a web_search_tool_result; per
// web fetch a server_tool_use and a web_fetch_tool_result; the text (with a citations_delta
// per search before its text_delta pieces, and citations in the JSON reply); a tool_use.
// Searched and fetched content is billed as input: message_start carries the input before
// the tools ran, the final message_delta (cumulative) the total.
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
// What the model does (each needs the matching request feature, else 400):
//
//	thinking_tokens=N       billed thinking tokens, 0-10000000 (needs thinking)
//	redacted_thinking       a redacted_thinking block instead of thinking (needs thinking)
//	tool_use=NAME           end with a tool_use of the custom tool NAME (must be in tools), input
//	                        built from its input_schema and streamed as input_json_delta pieces,
//	                        the first "", stop_reason tool_use (unless max_tokens or a stop
//	                        sequence ended the text first)
//	web_search=N            N searches, 0-100 (needs a web_search_* tool): usage.server_tool_use
//	                        .web_search_requests=N, and the text cites each
//	search_result_tokens=T  input tokens each search's results add (default 2000)
//	web_fetch=N             N fetches, 0-100 (needs a web_fetch_* tool): web_fetch_requests=N
//	fetch_tokens=T          input tokens each fetched page adds (default 3000)
//	iterations=N            usage.iterations with N "message" entries, 1-100: input and output
//	                        split evenly (remainder in the last), cache counts in the first, so
//	                        the entries sum to the totals
//
// Input the body does not show:
//
//	doc_pages=N             pages of each URL or file document, 0-100000 (default 10)
//	doc_page_tokens=T       tokens per page (default 3000)
//	image_size=WxH          pixel size of URL and file images (default 1092x1092)
//	input_tokens=N          force the prompt's size to N tokens (cache reads and writes still
//	                        come out of it; input_tokens reports the rest)
//	server_input_tokens=N   context loaded for mcp_servers or container (needs one of them)
//
// A hostile upstream:
//
//	long_line=BYTES         after message_start, a ping event whose data line is BYTES bytes
//	                        (64 B-512 MiB) long, sent in 64 KiB chunks without a newline until
//	                        its end, then the normal stream; with drop_after=2 the connection
//	                        closes right after it (needs "stream": true)
//	echo_key_headers        the received key as request-id, anthropic-organization-id,
//	                        anthropic-workspace-id, x-echo, cf-ray and server-timing
//	echo_key_fields         an error (status=N, default 401) with the key as error.type,
//	                        error.param, error.details.error_code and request_id and in
//	                        error.message; with error_after=N on a stream, the mid-stream error
//	                        event carries them instead
//
// For example "Summarise this. [[mock:status=429 retry_after=2]]". count_tokens honours the
// directives that do not need a reply (status…, first_byte_ms, hang, echo_key…) and those that
// shape the input (doc_pages, doc_page_tokens, image_size, input_tokens, also from the
// configured defaults); it counts the prompt before server tools and server_input_tokens.
//
// # Billing truth
//
// Every call that passes validation and reaches "the model" without an injected error is
// billed what the real API would bill, whatever the caller saw, and recorded as "billed" in
// its /_mock/requests entry (input_tokens, cache fields, output_tokens including
// thinking_tokens, server_tool_use, speed, inference_geo, iterations). Input is billed from
// acceptance, even when the client leaves during first_byte_ms or hang. A non-streamed reply
// is billed whole. A stream bills each event as the mock begins to send it, including the
// event during whose delay or write the client was found gone (or that drop_after or
// error_after replaced): thinking, redacted_thinking and server_tool_use blocks bill in full
// (hidden tokens, request, query and results) at their content_block_start; text and
// tool_use bill in proportion to the bytes sent so far, rounded up.
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
//	                        body, status, outcome, billed (?path=/v1/messages&limit=N);  DELETE clears
//	GET    /_mock/billing   billed usage since start-up or reset, never forgetting a call: "models"
//	                        (per model), "groups" (per model, speed and inference_geo, what prices
//	                        depend on) and "total", each with calls, input_tokens,
//	                        cache_creation_input_tokens, cache_read_input_tokens, cache_creation,
//	                        output_tokens, thinking_tokens and server_tool_use; DELETE clears.
//	                        A call is added when it finishes: wait for in_flight 0 first
//	GET    /_mock/stats     requests by path and status, cancelled, dropped, stream_errors,
//	                        faults_injected, streams, open_streams, in_flight, faults_pending
//	POST   /_mock/reset     clears queue, requests, billing, counters and prompt cache; restores
//	                        start-up defaults
//	GET    /_mock/health    {"status":"ok"}
//
// For each call the configured defaults, then the next queued fault, then the prompt's
// directives apply, each overriding the fields the one before set. Unknown JSON fields in
// admin bodies are rejected so a typo cannot pass silently.
package mock
