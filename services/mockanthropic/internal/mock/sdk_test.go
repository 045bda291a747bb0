package mock_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/mockanthropic/internal/mock"
)

// These tests drive the mock with the official Go SDK: if the SDK cannot tell the mock from
// the real API, neither can a gateway built and tested against it.

const sdkKey = "sk-ant-mock-sdk-test"

func startMock(t *testing.T) string {
	t.Helper()
	s, err := mock.New(mock.Options{APIKey: sdkKey})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
}

func sdkClient(base string, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithoutEnvironmentDefaults(), // ANTHROPIC_* in the developer's shell must not leak in
		option.WithBaseURL(base),
		option.WithAPIKey(sdkKey),
		option.WithRequestTimeout(10 * time.Second),
	}, opts...)...)
}

func adminJSON(t *testing.T, method, url, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

func question(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model("claude-sonnet-4-5"),
		MaxTokens: 1024,
		System:    []anthropic.TextBlockParam{{Text: "You are a SaaS analytics assistant."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func TestSDKMessage(t *testing.T) {
	base := startMock(t)
	client := sdkClient(base)
	var raw *http.Response
	msg, err := client.Messages.New(context.Background(), question("What drove churn last quarter?"), option.WithResponseInto(&raw))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(msg.ID, "msg_"))
	require.Equal(t, anthropic.Model("claude-sonnet-4-5"), msg.Model)
	require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
	require.Len(t, msg.Content, 1)
	require.Contains(t, msg.Content[0].Text, `"What drove churn last quarter?"`)
	require.Contains(t, msg.Content[0].Text, "System prompt: 35 characters")
	require.Positive(t, msg.Usage.InputTokens)
	require.Positive(t, msg.Usage.OutputTokens)
	require.True(t, msg.Usage.JSON.CacheReadInputTokens.Valid(), "usage carries the cache fields")
	require.EqualValues(t, "standard", msg.Usage.ServiceTier)
	require.True(t, strings.HasPrefix(raw.Header.Get("request-id"), "req_"))

	// What the SDK sent, as the mock recorded it: v2 defaults to Bearer and 2026-10-21.
	var got struct{ Requests []mock.RecordedRequest }
	adminJSON(t, "GET", base+"/_mock/requests?path=/v1/messages", "", &got)
	require.Len(t, got.Requests, 1)
	require.Equal(t, "Bearer "+sdkKey, got.Requests[0].Headers.Get("Authorization"))
	require.Equal(t, mock.Version2026, got.Requests[0].Headers.Get("Anthropic-Version"))
	require.Contains(t, got.Requests[0].Body, "What drove churn last quarter?")
}

func TestSDKStreamAccumulate(t *testing.T) {
	client := sdkClient(startMock(t))
	stream := client.Messages.NewStreaming(context.Background(), question("Summarise MRR trends [[mock:usage_deltas=3 output_tokens=120]]"))
	var msg anthropic.Message
	var kinds []string
	for stream.Next() {
		ev := stream.Current()
		kinds = append(kinds, ev.Type)
		require.NoError(t, msg.Accumulate(ev))
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())

	require.Equal(t, "message_start", kinds[0])
	require.Equal(t, "message_stop", kinds[len(kinds)-1])
	require.NotContains(t, kinds, "ping", "the SDK swallows pings")
	require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
	require.Len(t, msg.Content, 1)
	require.Len(t, msg.Content[0].Text, 480)
	require.True(t, strings.HasPrefix(msg.Content[0].Text, "Mock answer from claude-sonnet-4-5"))
	require.EqualValues(t, 120, msg.Usage.OutputTokens, "cumulative usage, last message_delta wins")
	require.Positive(t, msg.Usage.InputTokens)

	// The accumulated stream equals the non-streamed reply to the same question.
	plain, err := client.Messages.New(context.Background(), question("Summarise MRR trends [[mock:usage_deltas=3 output_tokens=120]]"))
	require.NoError(t, err)
	require.Equal(t, plain.Content[0].Text, msg.Content[0].Text)
	require.Equal(t, plain.Usage.InputTokens, msg.Usage.InputTokens)
}

func TestSDKPromptCaching(t *testing.T) {
	client := sdkClient(startMock(t))
	params := question("q1")
	params.System = []anthropic.TextBlockParam{{
		Text:         strings.Repeat("Context about the customer base. ", 100),
		CacheControl: anthropic.CacheControlEphemeralParam{TTL: anthropic.CacheControlEphemeralTTLTTL1h},
	}}
	first, err := client.Messages.New(context.Background(), params)
	require.NoError(t, err)
	require.EqualValues(t, 825, first.Usage.CacheCreationInputTokens)
	require.EqualValues(t, 825, first.Usage.CacheCreation.Ephemeral1hInputTokens)
	second, err := client.Messages.New(context.Background(), params)
	require.NoError(t, err)
	require.EqualValues(t, 825, second.Usage.CacheReadInputTokens)
	require.Zero(t, second.Usage.CacheCreationInputTokens)
	require.EqualValues(t, 1, second.Usage.InputTokens)
}

func TestSDKCountTokensAndModels(t *testing.T) {
	client := sdkClient(startMock(t))
	n, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    anthropic.ModelClaudeOpus4_8,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("a", 400)))},
	})
	require.NoError(t, err)
	require.EqualValues(t, 100, n.InputTokens)

	page, err := client.Models.List(context.Background(), anthropic.ModelListParams{})
	require.NoError(t, err)
	require.NotEmpty(t, page.Data)
	var ids []string
	iter := client.Models.ListAutoPaging(context.Background(), anthropic.ModelListParams{Limit: anthropic.Int(4)})
	for iter.Next() {
		ids = append(ids, iter.Current().ID)
	}
	require.NoError(t, iter.Err())
	require.Contains(t, ids, anthropic.ModelClaudeHaiku4_5)
	require.Contains(t, ids, anthropic.ModelClaudeOpus5)
	require.Greater(t, len(ids), 4, "auto-paging follows has_more and last_id")

	info, err := client.Models.Get(context.Background(), anthropic.ModelClaudeOpus4_8, anthropic.ModelGetParams{})
	require.NoError(t, err)
	require.Equal(t, "Claude Opus 4.8", info.DisplayName)
	require.EqualValues(t, 128000, info.MaxTokens)
}

func TestSDKWrongKeyIsTypedError(t *testing.T) {
	client := sdkClient(startMock(t), option.WithAPIKey("sk-ant-wrong"))
	_, err := client.Messages.New(context.Background(), question("hi"))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "got %T: %v", err, err)
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	require.EqualValues(t, "authentication_error", apiErr.Type())
	require.Equal(t, "invalid x-api-key", apiErr.Message)
	require.True(t, strings.HasPrefix(apiErr.RequestID, "req_"))
}

func TestSDKRetriesOverloaded(t *testing.T) {
	base := startMock(t)
	// retry_after_ms keeps the SDK's back-off short without changing what is exercised.
	adminJSON(t, "POST", base+"/_mock/faults", `{"queue":[{"status":529,"retry_after_ms":10},{"status":529,"retry_after_ms":10}]}`, nil)
	client := sdkClient(base)
	msg, err := client.Messages.New(context.Background(), question("hi"))
	require.NoError(t, err, "two 529s then success: the SDK's default two retries absorb them")
	require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)

	var st mock.Stats
	adminJSON(t, "GET", base+"/_mock/stats", "", &st)
	require.EqualValues(t, 3, st.ByPath["/v1/messages"])
	require.EqualValues(t, 2, st.ByStatus["529"])
	require.EqualValues(t, 1, st.ByStatus["200"])
	var got struct{ Requests []mock.RecordedRequest }
	adminJSON(t, "GET", base+"/_mock/requests", "", &got)
	require.Equal(t, "2", got.Requests[2].Headers.Get("X-Stainless-Retry-Count"))

	// Three 529s exhaust the retries: the SDK reports the last one.
	adminJSON(t, "POST", base+"/_mock/faults", `{"queue":[{"status":529,"retry_after_ms":1},{"status":529,"retry_after_ms":1},{"status":529,"retry_after_ms":1}]}`, nil)
	_, err = client.Messages.New(context.Background(), question("hi"))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, 529, apiErr.StatusCode)
	require.EqualValues(t, "overloaded_error", apiErr.Type())

	// The spend cap tells the SDK not to bother.
	adminJSON(t, "POST", base+"/_mock/faults", `{"queue":[{"spend_limit":true,"should_retry":false}]}`, nil)
	_, err = client.Messages.New(context.Background(), question("hi"))
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, 429, apiErr.StatusCode)
	require.Equal(t, anthropic.ErrorCodeEnforcedSpendLimitReached, apiErr.ErrorCode())
	adminJSON(t, "GET", base+"/_mock/stats", "", &st)
	require.EqualValues(t, 7, st.ByPath["/v1/messages"], "no retry after x-should-retry: false")
}

func TestSDKStreamErrorAfter(t *testing.T) {
	client := sdkClient(startMock(t))
	stream := client.Messages.NewStreaming(context.Background(), question("hi [[mock:error_after=4]]"))
	var msg anthropic.Message
	events := 0
	for stream.Next() {
		events++
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	err := stream.Err()
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "got %T: %v", err, err)
	require.EqualValues(t, "overloaded_error", apiErr.Type())
	require.Equal(t, 3, events, "message_start, content_block_start and one delta; the ping is not surfaced")
	require.NotEmpty(t, msg.Content[0].Text, "the partial answer was delivered before the error")
}

func TestSDKVersion2026RejectsTemperature(t *testing.T) {
	client := sdkClient(startMock(t))
	// The v2 SDK has no temperature field any more; callers who add it by hand get the API's 400.
	_, err := client.Messages.New(context.Background(), question("hi"), option.WithJSONSet("temperature", 0.2))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, 400, apiErr.StatusCode)
	require.EqualValues(t, "invalid_request_error", apiErr.Type())
	require.Contains(t, apiErr.Message, "temperature")

	// Pinned to the old version the same request is accepted.
	_, err = client.Messages.New(context.Background(), question("hi"),
		option.WithJSONSet("temperature", 0.2), option.WithHeader("anthropic-version", mock.Version2023))
	require.NoError(t, err)
}

func TestSDKCancellation(t *testing.T) {
	base := startMock(t)
	ctx, cancel := context.WithCancel(context.Background())
	client := sdkClient(base)
	stream := client.Messages.NewStreaming(ctx, question("hi [[mock:event_delay_ms=100 output_tokens=1000]]"))
	require.True(t, stream.Next())
	cancel()
	for stream.Next() {
	}
	require.ErrorIs(t, stream.Err(), context.Canceled)
	require.Eventually(t, func() bool {
		var st mock.Stats
		adminJSON(t, "GET", base+"/_mock/stats", "", &st)
		return st.Cancelled == 1 && st.OpenStreams == 0
	}, time.Second, 10*time.Millisecond)
}

// TestSDKRichStream checks that the SDK accumulates every block kind the mock streams into
// the same message as the non-streamed reply, and reads the billing fields of usage.
func TestSDKRichStream(t *testing.T) {
	client := sdkClient(startMock(t))
	params := question("Weather and news [[mock:web_search=2 web_fetch=1 tool_use=get_weather thinking_tokens=1500]]")
	params.MaxTokens = 8000
	params.Thinking = anthropic.ThinkingConfigParamOfEnabled(2048)
	params.Tools = []anthropic.ToolUnionParam{
		{OfTool: &anthropic.ToolParam{Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}}}}},
		{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{}},
		{OfWebFetchTool20250910: &anthropic.WebFetchTool20250910Param{}},
	}
	stream := client.Messages.NewStreaming(context.Background(), params)
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())

	var types []string
	for _, c := range msg.Content {
		types = append(types, c.Type)
	}
	require.Equal(t, []string{"thinking", "server_tool_use", "web_search_tool_result", "server_tool_use", "web_search_tool_result",
		"server_tool_use", "web_fetch_tool_result", "text", "tool_use"}, types)
	require.NotEmpty(t, msg.Content[0].AsThinking().Signature)
	require.NotEmpty(t, msg.Content[0].AsThinking().Thinking)
	require.Len(t, msg.Content[7].AsText().Citations, 2)
	require.Equal(t, "web_search_result_location", msg.Content[7].AsText().Citations[0].Type)
	require.Len(t, msg.Content[2].AsWebSearchToolResult().Content.OfWebSearchResultBlockArray, 2)
	tu := msg.Content[8].AsToolUse()
	require.Equal(t, "get_weather", tu.Name)
	require.JSONEq(t, `{"city":"mock"}`, string(tu.Input))
	require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
	require.EqualValues(t, 2, msg.Usage.ServerToolUse.WebSearchRequests)
	require.EqualValues(t, 1, msg.Usage.ServerToolUse.WebFetchRequests)
	require.EqualValues(t, 1500, msg.Usage.OutputTokensDetails.ThinkingTokens)
	require.Greater(t, msg.Usage.OutputTokens, int64(1500))

	plain, err := client.Messages.New(context.Background(), params)
	require.NoError(t, err)
	require.Len(t, plain.Content, len(msg.Content))
	require.Equal(t, plain.Usage.OutputTokens, msg.Usage.OutputTokens)
	require.Equal(t, plain.Usage.InputTokens, msg.Usage.InputTokens)
	require.Equal(t, plain.Content[7].AsText().Text, msg.Content[7].AsText().Text)
}
