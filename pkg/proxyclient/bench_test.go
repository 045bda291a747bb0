package proxyclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
)

func BenchmarkQuery(b *testing.B) {
	gw := newScripted(b, reply{status: 200, body: okAnswer})
	c, err := New(gw.srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	req := QueryRequest{Question: "What is my MRR?", Context: map[string]any{"current_mrr": 92148.74, "previous_mrr": 87234.56}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Query(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamParse measures reading a 200-delta answer, without the
// network, so changes to the SSE reader show up clearly.
func BenchmarkStreamParse(b *testing.B) {
	var sse bytes.Buffer
	for i := range 200 {
		fmt.Fprintf(&sse, "event: delta\ndata: {\"text\":\"word%d \"}\n\n", i)
	}
	sse.WriteString("event: done\ndata: {\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":200},\"request_id\":\"r\"}\n\n")
	raw := sse.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		resp := &http.Response{
			Header: http.Header{"Content-Type": {"text/event-stream"}},
			Body:   io.NopCloser(bytes.NewReader(raw)),
		}
		s := newStream(context.Background(), resp, "/api/query")
		n := 0
		for s.Next() {
			n++
		}
		if s.Err() != nil || n != 200 {
			b.Fatalf("read %d deltas: %v", n, s.Err())
		}
	}
}
