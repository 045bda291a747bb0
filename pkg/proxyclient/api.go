package proxyclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Health is the gateway's liveness answer.
type Health struct {
	Status    string    `json:"status"`
	Timestamp time.Time `json:"timestamp"`
	Version   string    `json:"version"`
}

// QueryRequest is a question about the caller's data. Context is the data
// itself (for example {"current_mrr": 92148.74}); nil is sent as {}.
type QueryRequest struct {
	Question string         `json:"question"`
	Context  map[string]any `json:"context"`
}

// Usage is the token count of one answer.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens,omitempty"`
}

// Answer is the gateway's reply to a question or an analytics query.
type Answer struct {
	Answer    string `json:"answer"`
	Model     string `json:"model"`
	Usage     Usage  `json:"usage"`
	RequestID string `json:"request_id"`
	// QueryType is set on analytics answers.
	QueryType string `json:"query_type,omitempty"`
}

// QuotaTokens is the token-per-minute limit, when the gateway has one.
type QuotaTokens struct {
	LimitPerMinute int64 `json:"limit_per_minute"`
	Remaining      int64 `json:"remaining"`
}

// QuotaBudget is the caller's daily spending budget, when the gateway has one.
type QuotaBudget struct {
	DailyUSD     float64   `json:"daily_usd"`
	SpentUSD     float64   `json:"spent_usd"`
	RemainingUSD float64   `json:"remaining_usd"`
	ResetsAt     time.Time `json:"resets_at"`
}

// RateLimitStatus is the caller's own quota. Asking for it consumes none.
type RateLimitStatus struct {
	Limit     int   `json:"limit"`
	Remaining int   `json:"remaining"`
	Reset     int64 `json:"reset"` // unix seconds
	// ResetAfterSeconds is how long until the quota is full again.
	ResetAfterSeconds float64      `json:"reset_after_seconds"`
	Window            string       `json:"window"`
	Policy            string       `json:"policy"`
	Tokens            *QuotaTokens `json:"tokens,omitempty"`
	Budget            *QuotaBudget `json:"budget,omitempty"`
	// Backend is "memory", "redis" or "degraded" (Redis unreachable, a
	// per-replica fallback in effect).
	Backend string `json:"backend"`
	// Identity is how the gateway knows the caller: "jwt", "hmac" or "ip".
	Identity string `json:"identity,omitempty"`
	// Tier is the caller's JWT tier, when it has one.
	Tier string `json:"tier,omitempty"`
}

// ResetTime is when the quota is full again.
func (s *RateLimitStatus) ResetTime() time.Time { return time.Unix(s.Reset, 0) }

// QueryParam describes one parameter of an analytics query type.
type QueryParam struct {
	Type      string   `json:"type"` // enum, string, boolean, integer, number
	Values    []string `json:"values,omitempty"`
	Required  bool     `json:"required,omitempty"`
	MaxLength int      `json:"max_length,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
}

// QueryType is one entry of the gateway's analytics catalog.
type QueryType struct {
	Description string                `json:"description"`
	Parameters  map[string]QueryParam `json:"parameters"`
}

// Health asks whether the gateway is alive. It makes a single attempt,
// never retried: a probe that waits and tries again hides the very outage
// it is meant to show.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	if err := c.getJSON(ctx, "/health", false, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Query asks a question about req.Context and waits for the whole answer.
func (c *Client) Query(ctx context.Context, req QueryRequest) (*Answer, error) {
	if req.Context == nil {
		req.Context = map[string]any{}
	}
	var a Answer
	if err := c.postJSON(ctx, "/api/query", req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AnalyticsQuery runs the catalog query queryType with params (see
// AnalyticsQueryTypes for what each type accepts).
func (c *Client) AnalyticsQuery(ctx context.Context, queryType string, params map[string]any) (*Answer, error) {
	if queryType == "" {
		return nil, fmt.Errorf("running analytics query: query type is empty")
	}
	if params == nil {
		params = map[string]any{}
	}
	in := struct {
		QueryType  string         `json:"query_type"`
		Parameters map[string]any `json:"parameters"`
	}{queryType, params}
	var a Answer
	if err := c.postJSON(ctx, "/api/analytics-query", in, &a); err != nil {
		return nil, err
	}
	if a.QueryType == "" {
		a.QueryType = queryType
	}
	return &a, nil
}

// AnalyticsQueryTypes returns the gateway's catalog of analytics query
// types, keyed by name.
func (c *Client) AnalyticsQueryTypes(ctx context.Context) (map[string]QueryType, error) {
	var out struct {
		QueryTypes map[string]QueryType `json:"query_types"`
	}
	if err := c.getJSON(ctx, "/api/analytics-query-types", true, &out); err != nil {
		return nil, err
	}
	return out.QueryTypes, nil
}

// RateLimitStatus returns the caller's remaining quota without using any.
func (c *Client) RateLimitStatus(ctx context.Context) (*RateLimitStatus, error) {
	var s RateLimitStatus
	if err := c.getJSON(ctx, "/api/rate-limit-status", true, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// QueryStream asks a question and returns the answer as it is written.
// Read it with Next/Text until Next returns false, then check Err; Final
// then holds the model, usage and request id. Close the stream when done
// (closing early cancels the answer upstream). A refusal before the first
// byte (429, 503, …) is retried like Query; once the answer has started
// nothing is retried, because the text already read cannot be taken back.
func (c *Client) QueryStream(ctx context.Context, req QueryRequest) (*Stream, error) {
	if req.Context == nil {
		req.Context = map[string]any{}
	}
	in := struct {
		QueryRequest
		Stream bool `json:"stream"`
	}{req, true}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encoding request for /api/query: %w", err)
	}
	return c.stream(ctx, "/api/query", body)
}

// AnalyticsQueryStream runs a catalog query like AnalyticsQuery and returns
// the answer as it is written, like QueryStream.
func (c *Client) AnalyticsQueryStream(ctx context.Context, queryType string, params map[string]any) (*Stream, error) {
	if queryType == "" {
		return nil, fmt.Errorf("running analytics query: query type is empty")
	}
	if params == nil {
		params = map[string]any{}
	}
	body, err := json.Marshal(struct {
		QueryType  string         `json:"query_type"`
		Parameters map[string]any `json:"parameters"`
		Stream     bool           `json:"stream"`
	}{queryType, params, true})
	if err != nil {
		return nil, fmt.Errorf("encoding request for /api/analytics-query: %w", err)
	}
	return c.stream(ctx, "/api/analytics-query", body)
}

func (c *Client) stream(ctx context.Context, path string, body []byte) (*Stream, error) {
	resp, err := c.do(ctx, call{method: http.MethodPost, path: path, body: body, accept: "text/event-stream", retry: true})
	if err != nil {
		return nil, err
	}
	return newStream(ctx, resp, path), nil
}
