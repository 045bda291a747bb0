package anthropic

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func detect(t *testing.T, body string, betas ...string) Features {
	t.Helper()
	req, err := ParseMessageRequest([]byte(body))
	require.NoError(t, err)
	f, err := DetectFeatures(req, betas)
	require.NoError(t, err)
	return f
}

func TestDetectFeatures(t *testing.T) {
	f := detect(t, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
		{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}},
		{"type":"document","source":{"type":"file","file_id":"file_1"}},
		{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},
		{"type":"image","source":{"type":"file","file_id":"file_2"}},
		{"type":"document","source":{"type":"text","media_type":"text/plain","data":"inline"}},
		{"type":"container_upload","file_id":"file_3"},
		{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"url","url":"https://e/b.pdf"}}]}]}],
		"tools":[{"name":"get_weather","input_schema":{"type":"object"}},{"type":"bash_20250124","name":"bash"},
		{"type":"web_search_20250305","name":"web_search","max_uses":3},{"type":"web_fetch_20250910","name":"web_fetch","max_content_tokens":5000},
		{"type":"code_execution_20250825","name":"code_execution"},{"type":"tool_search_tool_regex_20251119","name":"ts"},{"type":"advisor_20260301","name":"a"}],
		"mcp_servers":[{"type":"url","url":"https://mcp.example","name":"x"}],
		"container":{"skills":[{"type":"anthropic","skill_id":"pdf"},{"type":"custom","skill_id":"s2"}]},
		"speed":"fast","inference_geo":"us","thinking":{"type":"enabled","budget_tokens":4096}}`,
		"claude-code-20250219, context-1m-2025-08-07", "fast-mode-2026-02-01")
	require.Equal(t, 2, f.URLDocuments, "one at top level, one inside a tool_result")
	require.Equal(t, 1, f.FileDocuments)
	require.Equal(t, 1, f.URLImages)
	require.Equal(t, 1, f.FileImages)
	require.Equal(t, 1, f.ContainerUploads)
	require.Equal(t, []ServerTool{
		{Type: "web_search_20250305", Kind: ToolWebSearch, MaxUses: 3},
		{Type: "web_fetch_20250910", Kind: ToolWebFetch, MaxContentTokens: 5000},
		{Type: "code_execution_20250825", Kind: ToolCodeExecution},
		{Type: "tool_search_tool_regex_20251119", Kind: ToolSearch},
		{Type: "advisor_20260301", Kind: "advisor_20260301"},
	}, f.ServerTools, "client tools are not server tools")
	require.Equal(t, 1, f.MCPServers)
	require.Equal(t, 2, f.Skills)
	require.True(t, f.Container)
	require.Equal(t, "fast", f.Speed)
	require.Equal(t, "us", f.InferenceGeo)
	require.Equal(t, int64(4096), f.ThinkingBudget)
	require.Equal(t, []string{"claude-code-20250219", "context-1m-2025-08-07", "fast-mode-2026-02-01"}, f.Betas)
}

func TestDetectFeaturesEscapedSourceType(t *testing.T) {
	// The upstream decodes \u0075rl as "url"; so must the gateway.
	f := detect(t, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"\u0075rl","url":"https://e/a.pdf"}}]}]}`)
	require.Equal(t, 1, f.URLDocuments)
	f = detect(t, `{"model":"m","max_tokens":10,"system":[{"type":"text","text":"s"},{"type":"document","source":{"type":"url","url":"u"}}],"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 1, f.URLDocuments, "system blocks count too")
}

func TestDetectFeaturesPlainRequest(t *testing.T) {
	f := detect(t, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"fetch https://example.com/file please"}]}`)
	require.Equal(t, Features{}, f)
}

func TestPolicyRefusesNamingTheFeature(t *testing.T) {
	base := DefaultFeaturePolicy()
	tests := []struct {
		name string
		pol  func(*FeaturePolicy)
		body string
		beta string
		want string
	}{
		{"url source", func(p *FeaturePolicy) { p.URLSources = false },
			`"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"u"}}]}]`, "", "url source"},
		{"file source", func(p *FeaturePolicy) { p.FileSources = false },
			`"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]`, "", "file source"},
		{"web search without max_uses", func(p *FeaturePolicy) { p.RequireMaxUses = true },
			`"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]`, "", `tool "web_search_20250305": set max_uses`},
		{"max_uses above the cap", nil,
			`"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":500}]`, "", "max_uses 500 is above this gateway's cap of 20"},
		{"server tool not allowed", func(p *FeaturePolicy) { p.ServerTools = []string{ToolWebSearch} },
			`"messages":[],"tools":[{"type":"web_fetch_20250910","name":"web_fetch"}]`, "", `tool "web_fetch_20250910"`},
		{"unknown typed tool", nil, `"messages":[],"tools":[{"type":"advisor_20260301","name":"a"}]`, "", `tool "advisor_20260301"`},
		{"mcp servers off by default", nil, `"messages":[],"mcp_servers":[{"type":"url","url":"u","name":"n"}]`, "", "mcp_servers"},
		{"skills off by default", nil, `"messages":[],"container":{"skills":[{"type":"anthropic","skill_id":"pdf"}]}`, "", "container.skills"},
		{"fast mode", func(p *FeaturePolicy) { p.FastMode = false }, `"messages":[],"speed":"fast"`, "", "speed"},
		{"geo", nil, `"messages":[],"inference_geo":"eu"`, "", `inference_geo: "eu"`},
		{"price-changing beta", func(p *FeaturePolicy) { p.Betas = nil }, `"messages":[]`, "context-1m-2025-08-07", `anthropic-beta "context-1m-2025-08-07"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := base
			if tt.pol != nil {
				tt.pol(&pol)
			}
			var betas []string
			if tt.beta != "" {
				betas = []string{tt.beta}
			}
			f := detect(t, `{"model":"m","max_tokens":10,`+tt.body+`}`, betas...)
			err := pol.Check(f)
			require.Error(t, err)
			require.ErrorContains(t, err, tt.want)
			require.True(t, errors.Is(err, ErrInvalidRequest), "a 400 for the caller")
			var fe *FeatureError
			require.True(t, errors.As(err, &fe))
		})
	}
}

func TestPolicyDefaultsAcceptClaudeCode(t *testing.T) {
	f := detect(t, `{"model":"m","max_tokens":32000,"stream":true,"thinking":{"type":"enabled","budget_tokens":31999},
		"tools":[{"name":"Bash","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search","max_uses":8}],
		"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}`,
		"claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,fine-grained-tool-streaming-2025-05-14,prompt-caching-2024-07-31,context-1m-2025-08-07,fast-mode-2026-02-01")
	require.NoError(t, DefaultFeaturePolicy().Check(f))
}

// TestReserveHandComputed: each reservation worked out by hand from the
// default bounds and prices.
func TestReserveHandComputed(t *testing.T) {
	prices := DefaultPrices()
	pol := DefaultFeaturePolicy()
	urlDoc := Features{URLDocuments: 1}
	tests := []struct {
		name      string
		model     string
		f         Features
		visible   int64
		out       int64
		wantUSD   float64
		wantInput int64
		long      bool
	}{
		// 401,000 at the 1h-write rate $6 + 1,000 · $15.
		{"url document", "claude-sonnet-4-6", urlDoc, 1000, 1000, (401_000*6 + 1000*15) / 1e6, 401_000, false},
		// Crosses 200k on Sonnet 4.5: the long tier ($12 1h writes, $22.50 out).
		{"url document, long context", "claude-sonnet-4-5", urlDoc, 1000, 1000, (401_000*12 + 1000*22.5) / 1e6, 401_000, true},
		// Web search ×2 on Opus 4.6, fast and US: prompt 1,000 + 2·25,000
		// at $10; the two later iterations read again 1,000 + 1,000 output
		// each, and the second also the first search's 25,000 (29,000 at
		// $5); output at $25; ×6 ×1.1; plus 2 searches at $0.01.
		{"web search, fast, us", "claude-opus-4-6",
			Features{ServerTools: []ServerTool{{Type: "web_search_20250305", Kind: ToolWebSearch, MaxUses: 2}}, Speed: "fast", InferenceGeo: "us"},
			1000, 1000, (51_000*10+29_000*5+1000*25)/1e6*6*1.1 + 0.02, 51_000 + 29_000, false},
		// web_fetch without max_uses: 10 uses of max_content_tokens 10,000
		// on Haiku 4.5 (writes $2, input $1, out $5). Re-reads: 10 · (1,000
		// + 500) plus the earlier fetches, 10,000 · (0+1+…+9) = 450,000.
		{"web fetch default uses, max_content_tokens", "claude-haiku-4-5",
			Features{ServerTools: []ServerTool{{Type: "web_fetch_20250910", Kind: ToolWebFetch, MaxContentTokens: 10_000}}},
			1000, 500, (101_000*2 + 465_000*1 + 500*5) / 1e6, 101_000 + 465_000, false},
		// Fast on a model without a documented multiplier: bounded at 6x.
		{"fast, undocumented multiplier", "claude-opus-5-5", Features{Speed: "fast"}, 1000, 1000, (1000*8 + 1000*20) / 1e6 * 6, 1000, false},
		{"plain", "claude-haiku-4-5", Features{}, 1000, 1000, (1000*2 + 1000*5) / 1e6, 1000, false},
		// Haiku 5.5's tier follows the prompt: 95k in, 10k out stays short
		// ($0.20 1h writes, $0.50 out); with a server tool the output may
		// join a later prompt, so the same call is long ($1, $2.50 out).
		{"haiku 5.5 prompt under 100k", "claude-haiku-5-5", Features{}, 95_000, 10_000, (95_000*0.20 + 10_000*0.50) / 1e6, 95_000, false},
		{"haiku 5.5 loop can pass 100k", "claude-haiku-5-5",
			Features{ServerTools: []ServerTool{{Type: "web_search_20250305", Kind: ToolWebSearch, MaxUses: 1}}}, 70_000, 10_000,
			(95_000*1+80_000*0.50+10_000*2.50)/1e6 + 0.01, 95_000 + 80_000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := prices.Reserve(ReserveInput{Model: tt.model, VisibleInputTokens: tt.visible, Features: tt.f, Policy: pol, OutputTokens: tt.out})
			require.NoError(t, err)
			require.InDelta(t, tt.wantUSD, r.CostUSD, 0.5e-6)
			require.Equal(t, tt.wantInput, r.InputTokens())
			require.Equal(t, tt.wantInput+tt.out, r.Tokens())
			require.Equal(t, tt.long, r.LongContext)
		})
	}
}

// TestReserveHugeMaxUses: with no cap in the policy, a max_uses far beyond
// any budget neither overflows nor shrinks the reservation.
func TestReserveHugeMaxUses(t *testing.T) {
	pol := DefaultFeaturePolicy()
	pol.MaxUses = 0
	f := Features{ServerTools: []ServerTool{{Type: "web_search_20250305", Kind: ToolWebSearch, MaxUses: 1 << 62}}}
	r, err := DefaultPrices().Reserve(ReserveInput{Model: "claude-haiku-4-5", Features: f, Policy: pol})
	require.NoError(t, err)
	const u = maxCountedUses
	require.Equal(t, int64(u*25_000+25_000*u*(u-1)/2), r.InputTokens())
	require.InEpsilon(t, (u*25_000*2.0+25_000*u*(u-1)/2.0)/1e6+u*0.01, r.CostUSD, 1e-9)
	require.Greater(t, r.CostUSD, 1e5)
}

func TestReserveRefusals(t *testing.T) {
	prices := DefaultPrices()
	_, err := prices.Reserve(ReserveInput{Model: "claude-unknown", Policy: DefaultFeaturePolicy()})
	require.ErrorIs(t, err, ErrUnpriced)
	_, err = prices.Reserve(ReserveInput{Model: "claude-haiku-4-5", Policy: DefaultFeaturePolicy(), Features: Features{MCPServers: 1}})
	require.ErrorIs(t, err, ErrInvalidRequest)
	require.ErrorContains(t, err, "mcp_servers")
}

func TestDetectFeaturesNesting(t *testing.T) {
	doc := `{"type":"document","source":{"type":"url","url":"https://e/a.pdf"}}`
	t.Run("tool_use input is not content", func(t *testing.T) {
		f := detect(t, `{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"x":`+doc+`}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[`+doc+`]}]}]}`)
		require.Equal(t, 1, f.URLDocuments)
	})
	t.Run("a web_fetch result nests its document in an object", func(t *testing.T) {
		f := detect(t, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"web_fetch_tool_result","tool_use_id":"t","content":{"type":"web_fetch_result","url":"u","content":`+doc+`}}]}]}`)
		require.Equal(t, 1, f.URLDocuments)
	})
	t.Run("hostile nesting is one pass and still counted", func(t *testing.T) {
		const depth = 5000
		body := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":` +
			strings.Repeat(`{"type":"x","content":`, depth) + `[` + doc + `]` + strings.Repeat(`}`, depth) + `}]}`
		start := time.Now()
		f := detect(t, body)
		require.Less(t, time.Since(start), 2*time.Second)
		_ = f // counted down to maxWalkDepth; deeper is not a shape the API reads
		shallow := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":` +
			strings.Repeat(`[`, 40) + doc + strings.Repeat(`]`, 40) + `}]}`
		require.Equal(t, 1, detect(t, shallow).URLDocuments, "deeper than the typed decode, still counted")
	})
}

func BenchmarkDetectFeaturesLargeBody(b *testing.B) {
	img := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 200_000) // ~4.8 MB of base64
	body := []byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
		{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + img + `"}},
		{"type":"document","source":{"type":"url","url":"https://e/a.pdf"}},{"type":"text","text":"compare"}]}]}`)
	req, err := ParseMessageRequest(body)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := DetectFeatures(req, nil); f.URLDocuments != 1 {
			b.Fatal(f)
		}
	}
}

// refCount is the reference for scanBlocks: encoding/json and a map walk.
func refCount(v any, depth int, f *Features) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			refCount(e, depth+1, f)
		}
	case map[string]any:
		if depth > maxScanDepth {
			return
		}
		typ, _ := x["type"].(string)
		st := ""
		if src, ok := x["source"].(map[string]any); ok {
			st, _ = src["type"].(string)
		}
		switch {
		case typ == "container_upload":
			f.ContainerUploads++
		case typ == "document" && st == "url":
			f.URLDocuments++
		case typ == "document" && st == "file":
			f.FileDocuments++
		case typ == "image" && st == "url":
			f.URLImages++
		case typ == "image" && st == "file":
			f.FileImages++
		}
		for k, e := range x {
			if k != "input" {
				refCount(e, depth+1, f)
			}
		}
	}
}

func jsonDepth(b []byte) int {
	d, best := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			d++
			best = max(best, d)
		case '}', ']':
			d--
		}
	}
	return best
}

// FuzzFeaturesAndEstimate: no input panics the estimator or the feature
// scan, and the one-pass scan counts what encoding/json sees.
func FuzzFeaturesAndEstimate(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"u"}}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"source":{"type":"\u0066ile"},"type":"image"},{"type":"tool_use","input":{"type":"document","source":{"type":"url"}}}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}}]}]}`))
	f.Add([]byte(`{"messages":[{"content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjcKMSAwIG9iaiA8PCAvVHlwZSAvUGFnZSA+PgplbmRvYmoKL0NvdW50IDMgCg=="}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if EstimateInputTokens(body) < 1 {
			t.Fatal("estimate below 1")
		}
		req, err := ParseMessageRequest(body)
		if err != nil {
			return
		}
		got, err := DetectFeatures(req, nil)
		if err != nil || len(req.Messages) == 0 || jsonDepth(req.Messages) > maxScanDepth-2 {
			return
		}
		var v any
		if json.Unmarshal(req.Messages, &v) != nil {
			return
		}
		var want Features
		refCount(v, 1, &want)
		if !mayFetch(req.Messages) {
			return
		}
		if got.URLDocuments != want.URLDocuments || got.FileDocuments != want.FileDocuments || got.URLImages != want.URLImages ||
			got.FileImages != want.FileImages || got.ContainerUploads != want.ContainerUploads {
			t.Fatalf("scan %+v, encoding/json %+v", got, want)
		}
	})
}
