package anthropic

// The usage fields beyond token counts that change what a call costs
// (reference/api-billing.md): server-tool fees, the fast-mode and
// data-residency multipliers, and the per-iteration split of a server-tool
// loop (the long-context threshold applies per iteration). UsageExt is
// embedded in Usage, so u.Speed and friends read as Usage fields.

// UsageExt is the price-changing part of a usage object.
type UsageExt struct {
	ServerToolUse *ServerToolUse   `json:"server_tool_use,omitempty"`
	ServiceTier   string           `json:"service_tier,omitempty"`
	Speed         string           `json:"speed,omitempty"`
	InferenceGeo  string           `json:"inference_geo,omitempty"`
	Iterations    []UsageIteration `json:"iterations,omitempty"`
}

// ServerToolUse counts the server-tool requests a call made (each billed as
// a fee on top of tokens).
type ServerToolUse struct {
	WebSearchRequests int64 `json:"web_search_requests"`
	WebFetchRequests  int64 `json:"web_fetch_requests"`
}

// UsageIteration is the usage of one sampling iteration (usage.iterations).
type UsageIteration struct {
	Type                     string         `json:"type,omitempty"`
	InputTokens              int64          `json:"input_tokens"`
	OutputTokens             int64          `json:"output_tokens"`
	CacheCreationInputTokens int64          `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64          `json:"cache_read_input_tokens"`
	CacheCreation            *CacheCreation `json:"cache_creation,omitempty"`
}
