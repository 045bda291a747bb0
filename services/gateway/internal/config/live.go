package config

// Live is how budgets are enforced while an answer is produced (README "How
// budgets hold").
type Live struct {
	// OutputSlice is the output a stream reserves at admission beyond its
	// input and thinking budget, and the step its reservation is extended by
	// as output flows (KEYWARD_RESERVE_OUTPUT_TOKENS, default 4096). A
	// non-streaming call reserves its whole max_tokens.
	OutputSlice int64
	// MaxConcurrentCalls caps one identity's concurrent upstream calls
	// (streams and JSON) across every replica when Redis is shared
	// (KEYWARD_MAX_CONCURRENT_CALLS, default 32; 0 = no cap).
	MaxConcurrentCalls int
}

func loadLive(p *problems, get func(string, string) string) Live {
	return Live{
		OutputSlice:        int64(intVar(p, get, "KEYWARD_RESERVE_OUTPUT_TOKENS", 4096, 256)),
		MaxConcurrentCalls: intVar(p, get, "KEYWARD_MAX_CONCURRENT_CALLS", 32, 0),
	}
}
