package anthropic

// The usage fields below carry what the API bills beyond plain token
// counts. They live in their own type so the metering code can fill them
// without the price model depending on how usage is parsed: embed UsageExt
// in Usage (its JSON tags match the API's usage object) or pass it to
// PriceTable.Bill beside the token counts.

// UsageExt is the billing-relevant part of a usage object besides tokens.
type UsageExt struct {
	// ServerToolUse counts the server-side tool calls the upstream ran
	// (usage.server_tool_use); web searches carry a per-call fee.
	ServerToolUse *ServerToolUse `json:"server_tool_use,omitempty"`
	// ServiceTier is "standard", "priority" or "batch".
	ServiceTier string `json:"service_tier,omitempty"`
	// Speed is "fast" when fast mode served the call (a price multiplier),
	// "standard" or empty otherwise.
	Speed string `json:"speed,omitempty"`
	// InferenceGeo is where inference ran ("us" carries a multiplier).
	InferenceGeo string `json:"inference_geo,omitempty"`
	// Iterations splits the usage of a server-tool loop by sampling
	// iteration; the long-context threshold applies to each on its own.
	Iterations []IterationUsage `json:"iterations,omitempty"`
}

// ServerToolUse is usage.server_tool_use.
type ServerToolUse struct {
	WebSearchRequests     int64 `json:"web_search_requests"`
	WebFetchRequests      int64 `json:"web_fetch_requests"`
	CodeExecutionRequests int64 `json:"code_execution_requests"`
}

// IterationUsage is one entry of usage.iterations.
type IterationUsage struct {
	Type                     string         `json:"type,omitempty"`
	InputTokens              int64          `json:"input_tokens"`
	OutputTokens             int64          `json:"output_tokens"`
	CacheCreationInputTokens int64          `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64          `json:"cache_read_input_tokens"`
	CacheCreation            *CacheCreation `json:"cache_creation,omitempty"`
}

// Tokens is the iteration as a plain Usage.
func (it IterationUsage) Tokens() Usage {
	return Usage{
		InputTokens:              it.InputTokens,
		OutputTokens:             it.OutputTokens,
		CacheCreationInputTokens: it.CacheCreationInputTokens,
		CacheReadInputTokens:     it.CacheReadInputTokens,
		CacheCreation:            it.CacheCreation,
	}
}
