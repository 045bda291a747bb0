package mock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const weatherTool = `{"name":"get_weather","description":"Weather now","input_schema":{"type":"object",` +
	`"properties":{"city":{"type":"string"},"days":{"type":"integer"},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city"]}}`

// countTokens returns what count_tokens says for b.
func countTokens(t *testing.T, s *Server, b string) int64 {
	t.Helper()
	rec := serve(s, apiRequest(t, "POST", "/v1/messages/count_tokens", b))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var ct struct {
		InputTokens int64 `json:"input_tokens"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ct))
	return ct.InputTokens
}

func TestToolUse(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tools := `"tools":[` + weatherTool + `]`

	t.Run("JSON", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("weather? [[mock:tool_use=get_weather]]", tools)))
		var m struct {
			Content    []map[string]any `json:"content"`
			StopReason string           `json:"stop_reason"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
		require.Equal(t, "tool_use", m.StopReason)
		require.Len(t, m.Content, 2)
		tu := m.Content[1]
		require.Equal(t, "tool_use", tu["type"])
		require.Equal(t, "get_weather", tu["name"])
		require.True(t, strings.HasPrefix(tu["id"].(string), "toolu_"))
		require.Equal(t, map[string]any{"city": "mock", "days": float64(1), "unit": "celsius"}, tu["input"])
	})

	t.Run("stream", func(t *testing.T) {
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("weather? [[mock:tool_use=get_weather]]", tools)))
		events := parseSSE(t, rec.Body.Bytes())
		var partial []string
		var start map[string]any
		for _, e := range events {
			if e.Name == "content_block_start" && num(e.Data["index"]) == 1 {
				start = e.Data["content_block"].(map[string]any)
			}
			if e.Name == "content_block_delta" && num(e.Data["index"]) == 1 {
				d := e.Data["delta"].(map[string]any)
				require.Equal(t, "input_json_delta", d["type"])
				partial = append(partial, d["partial_json"].(string))
			}
		}
		require.Equal(t, map[string]any{}, start["input"], "content_block_start carries an empty input")
		require.Equal(t, "", partial[0], "the first piece is empty, as from the real API")
		require.Greater(t, len(partial), 2)
		var in map[string]any
		require.NoError(t, json.Unmarshal([]byte(strings.Join(partial, "")), &in))
		require.Equal(t, "mock", in["city"])
		md := events[len(events)-2]
		require.Equal(t, "tool_use", md.Data["delta"].(map[string]any)["stop_reason"])
	})

	t.Run("unknown tool", func(t *testing.T) {
		e := requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:tool_use=get_time]]", tools))), 400, errInvalidRequest)
		require.Contains(t, e.Error.Message, "tool_use=get_time")
		requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:tool_use=web_search]]",
			`"tools":[{"type":"web_search_20250305","name":"web_search"}]`))), 400, errInvalidRequest)
		requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:tool_use=a/b]]", tools))), 400, errInvalidRequest)
	})
}

const searchTools = `"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5},{"type":"web_fetch_20250910","name":"web_fetch"}]`

func TestServerTools(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)

	t.Run("JSON", func(t *testing.T) {
		b := body("news [[mock:web_search=2 web_fetch=1 search_result_tokens=1000]]", searchTools)
		prompt := countTokens(t, s, b)
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", b))
		var m struct {
			Content []map[string]any `json:"content"`
			Usage   map[string]any   `json:"usage"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
		var types []string
		for _, c := range m.Content {
			types = append(types, c["type"].(string))
		}
		require.Equal(t, []string{"server_tool_use", "web_search_tool_result", "server_tool_use", "web_search_tool_result",
			"server_tool_use", "web_fetch_tool_result", "text"}, types)
		require.Equal(t, "web_search", m.Content[0]["name"])
		require.Contains(t, m.Content[0]["input"].(map[string]any)["query"], "mock search 1")
		require.Equal(t, m.Content[0]["id"], m.Content[1]["tool_use_id"])
		results := m.Content[1]["content"].([]any)
		require.NotEmpty(t, results)
		r0 := results[0].(map[string]any)
		require.Equal(t, "web_search_result", r0["type"])
		for _, k := range []string{"url", "title", "encrypted_content", "page_age"} {
			require.NotEmpty(t, r0[k], k)
		}
		fetch := m.Content[5]["content"].(map[string]any)
		require.Equal(t, "web_fetch_result", fetch["type"])
		require.Equal(t, "document", fetch["content"].(map[string]any)["type"])
		cites := m.Content[6]["citations"].([]any)
		require.Len(t, cites, 2)
		c0 := cites[0].(map[string]any)
		require.Equal(t, "web_search_result_location", c0["type"])
		require.Equal(t, r0["url"], c0["url"])

		stu := m.Usage["server_tool_use"].(map[string]any)
		require.EqualValues(t, 2, num(stu["web_search_requests"]))
		require.EqualValues(t, 1, num(stu["web_fetch_requests"]))
		require.EqualValues(t, prompt+2*1000+3000, num(m.Usage["input_tokens"]),
			"search results and the fetched page are billed as input")

		billed := lastBilled(t, s)
		require.Equal(t, ServerToolUse{WebSearchRequests: 2, WebFetchRequests: 1}, billed.ServerToolUse)
		require.Equal(t, num(m.Usage["input_tokens"]), billed.InputTokens)
		require.Equal(t, num(m.Usage["output_tokens"]), billed.OutputTokens)
	})

	t.Run("stream", func(t *testing.T) {
		b := streamBody("news [[mock:web_search=1]]", searchTools)
		prompt := countTokens(t, s, b)
		rec := serve(s, apiRequest(t, "POST", "/v1/messages", b))
		events := parseSSE(t, rec.Body.Bytes())
		startUsage := events[0].Data["message"].(map[string]any)["usage"].(map[string]any)
		require.EqualValues(t, prompt, num(startUsage["input_tokens"]), "message_start: input before the search")
		final := events[len(events)-2].Data["usage"].(map[string]any)
		require.EqualValues(t, prompt+2000, num(final["input_tokens"]), "the final delta carries the cumulative input")
		require.EqualValues(t, 1, num(final["server_tool_use"].(map[string]any)["web_search_requests"]))
		var starts, deltas []string
		for _, e := range events {
			switch e.Name {
			case "content_block_start":
				starts = append(starts, e.Data["content_block"].(map[string]any)["type"].(string))
			case "content_block_delta":
				deltas = append(deltas, e.Data["delta"].(map[string]any)["type"].(string))
			}
		}
		require.Equal(t, []string{"server_tool_use", "web_search_tool_result", "text"}, starts)
		require.Contains(t, deltas, "input_json_delta")
		require.Contains(t, deltas, "citations_delta")
	})

	t.Run("undeclared tool", func(t *testing.T) {
		e := requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:web_search=1]]"))), 400, errInvalidRequest)
		require.Contains(t, e.Error.Message, "web_search_")
		requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:web_fetch=1]]",
			`"tools":[{"type":"web_search_20250305","name":"web_search"}]`))), 400, errInvalidRequest)
		requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:web_search=101]]", searchTools))), 400, errInvalidRequest)
	})

	t.Run("no server tool, no server_tool_use", func(t *testing.T) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(serve(s, apiRequest(t, "POST", "/v1/messages", body("hi"))).Body.Bytes(), &m))
		require.NotContains(t, m["usage"], "server_tool_use")
	})
}

func encodeImage(t *testing.T, format string, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var buf bytes.Buffer
	switch format {
	case "png":
		require.NoError(t, png.Encode(&buf, img))
	case "jpeg":
		require.NoError(t, jpeg.Encode(&buf, img, nil))
	case "gif":
		require.NoError(t, gif.Encode(&buf, img, nil))
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestImageSize(t *testing.T) {
	for _, format := range []string{"png", "jpeg", "gif"} {
		w, h := base64ImageSize(encodeImage(t, format, 640, 480))
		require.Equal(t, [2]int{640, 480}, [2]int{w, h}, format)
	}
	riff := func(chunk string, payload ...byte) []byte {
		b := append([]byte("RIFF\x00\x00\x00\x00WEBP"+chunk+"\x00\x00\x00\x00"), payload...)
		return append(b, make([]byte, 16)...)
	}
	// VP8X: flags, then 24-bit width-1 and height-1.
	require.Equal(t, [2]int{1000, 500}, size2(imageSize(riff("VP8X", 0, 0, 0, 0, 0xE7, 0x03, 0, 0xF3, 0x01, 0))))
	// VP8L: signature 0x2f, 14 bits width-1 (99), 14 bits height-1 (49).
	v := uint32(99) | uint32(49)<<14
	require.Equal(t, [2]int{100, 50}, size2(imageSize(riff("VP8L", 0x2f, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)))))
	// VP8: frame tag, start code, 16-bit width and height.
	require.Equal(t, [2]int{320, 240}, size2(imageSize(riff("VP8 ", 0, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xF0, 0x00))))
	for _, junk := range []string{"", "aGVsbG8=", "!!!", strings.Repeat("A", 10)} {
		w, h := base64ImageSize(junk)
		require.Zero(t, w+h, junk)
	}
}

func size2(w, h int) [2]int { return [2]int{w, h} }

func FuzzImageSize(f *testing.F) {
	for _, seed := range [][]byte{
		[]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00"),
		{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x00, 0x02, 0x00},
		[]byte("GIF89a\x10\x00\x10\x00"),
		[]byte("RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f\x00\x00\x00\x00"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h := imageSize(b)
		if w < 0 || h < 0 || (w == 0) != (h == 0) {
			t.Fatalf("size %dx%d", w, h)
		}
	})
}

func TestHiddenInput(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	msg := func(blocks ...string) string {
		return `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":[` +
			strings.Join(blocks, ",") + `]}]}`
	}
	input := func(b string) int64 {
		m := decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", b)))
		require.Equal(t, m.Usage.InputTokens, countTokens(t, s, b), "count_tokens counts what the call bills")
		require.Equal(t, m.Usage.InputTokens, lastBilled(t, s).InputTokens)
		return m.Usage.InputTokens
	}
	text := func(s string) string { return `{"type":"text","text":"` + s + `"}` }
	base := input(msg(text("read this")))

	urlDoc := `{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}}`
	fileDoc := `{"type":"document","source":{"type":"file","file_id":"file_011"}}`
	require.Equal(t, base+10*3000, input(msg(urlDoc, text("read this"))), "default: 10 pages of 3000 tokens")
	pages := text("read this [[mock:doc_pages=5 doc_page_tokens=1000]]")
	require.Equal(t, input(msg(pages))+2*5*1000, input(msg(urlDoc, fileDoc, pages)))

	urlImg := `{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}`
	require.Equal(t, base+1590, input(msg(urlImg, text("read this"))), "1092x1092 by default")
	withSize := text("read this [[mock:image_size=1500x750]]")
	require.Equal(t, input(msg(withSize))+1500, input(msg(urlImg, withSize)))

	b64 := `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + encodeImage(t, "png", 300, 250) + `"}}`
	require.Equal(t, base+100, input(msg(b64, text("read this"))), "300×250/750 from the PNG header")

	forced := text("read this [[mock:input_tokens=250000]]")
	require.EqualValues(t, 250000, input(msg(urlDoc, forced)))

	// Server-side context.
	mcp := `{"model":"claude-sonnet-4-5","max_tokens":100,"mcp_servers":[{"type":"url","url":"https://mcp.example.com","name":"x"}],` +
		`"messages":[{"role":"user","content":"hi"}]}`
	mcpN := strings.Replace(mcp, `"hi"`, `"hi [[mock:server_input_tokens=7000]]"`, 1)
	// count_tokens counts the prompt without the server-side context.
	require.Equal(t, countTokens(t, s, mcp)+2000, decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", mcp))).Usage.InputTokens)
	require.Equal(t, countTokens(t, s, mcpN)+7000, decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", mcpN))).Usage.InputTokens)
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:server_input_tokens=5]]"))), 400, errInvalidRequest)

	for _, bad := range []string{"image_size=0x5", "image_size=5", "image_size=axb", "doc_pages=-1", "input_tokens=99999999999", "doc_page_tokens=x"} {
		requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:"+bad+"]]"))), 400, errInvalidRequest)
	}
}

func TestIterations(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	rec := serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("x [[mock:iterations=3 input_tokens=600001 output_tokens=50]]")))
	events := parseSSE(t, rec.Body.Bytes())
	final := events[len(events)-2].Data["usage"].(map[string]any)
	its := final["iterations"].([]any)
	require.Len(t, its, 3)
	var in, out int64
	for _, it := range its {
		m := it.(map[string]any)
		require.Equal(t, "message", m["type"])
		in += num(m["input_tokens"])
		out += num(m["output_tokens"])
	}
	require.EqualValues(t, 600001, in)
	require.EqualValues(t, 50, out)
	require.EqualValues(t, 200000, num(its[0].(map[string]any)["input_tokens"]), "evenly split: each iteration ≥ 200k")
	require.EqualValues(t, 200001, num(its[2].(map[string]any)["input_tokens"]))
	require.Len(t, lastBilled(t, s).Iterations, 3)
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("[[mock:iterations=101]]"))), 400, errInvalidRequest)
}

func TestNewDirectivesFromAdminJSON(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	code, _ := adminCall(t, s, "POST", "/_mock/config", `{"doc_pages":2,"doc_page_tokens":100,"image_size":"750x1","iterations":2}`)
	require.Equal(t, 200, code)
	code, _ = adminCall(t, s, "POST", "/_mock/faults", `{"queue":[{"web_search":1,"search_result_tokens":10,"thinking_tokens":0,"tool_use":"get_weather"}]}`)
	require.Equal(t, 200, code)
	rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("x", `"tools":[`+weatherTool+`,{"type":"web_search_20250305","name":"web_search"}]`,
		`"max_tokens":4096`, thinkingEnabled)))
	var m struct {
		Content    []map[string]any `json:"content"`
		StopReason string           `json:"stop_reason"`
		Usage      map[string]any   `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
	require.Equal(t, "tool_use", m.StopReason)
	require.Equal(t, "thinking", m.Content[0]["type"])
	require.Len(t, m.Usage["iterations"], 2)
	require.Zero(t, lastBilled(t, s).ThinkingTokens, "thinking_tokens=0 is honoured, not taken as unset")

	code, out := adminCall(t, s, "POST", "/_mock/config", `{"image_size":"big"}`)
	require.Equal(t, 400, code)
	require.Contains(t, out["error"].(map[string]any)["message"], "image_size")
	code, _ = adminCall(t, s, "POST", "/_mock/config", `{"long_line":10}`)
	require.Equal(t, 400, code)
}
