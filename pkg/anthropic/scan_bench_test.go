package anthropic

import "testing"

// benchAnswer is a non-streaming answer of ordinary size: the text is most
// of it, the usage a small object at the end.
var benchAnswer = []byte(`{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"` +
	"Churn in the enterprise segment fell from 2.1% to 1.6% over the quarter, driven by the onboarding changes shipped in July; " +
	"smaller accounts churned more than last year, mostly at the first renewal, which points at pricing rather than product. " +
	"Expansion revenue offset most of the loss." +
	`"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":410,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":85,"service_tier":"standard"}}`)

// BenchmarkMeterJSON meters an ordinary answer (encoding/json, the one path).
func BenchmarkMeterJSON(b *testing.B) {
	b.SetBytes(int64(len(benchAnswer)))
	b.ReportAllocs()
	for b.Loop() {
		if u, _, err := MeterJSON(benchAnswer); err != nil || u.OutputTokens != 85 {
			b.Fatal(u, err)
		}
	}
}
