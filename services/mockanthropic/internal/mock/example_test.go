package mock_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyward/keyward/services/mockanthropic/internal/mock"
)

// A test scripts two overloaded replies, then sees them in order.
func ExampleNew() {
	s, err := mock.New(mock.Options{APIKey: "mock-key"})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	script := `{"queue":[{"status":529},{"status":429,"retry_after":2}]}`
	resp, err := http.Post(srv.URL+"/_mock/faults", "application/json", strings.NewReader(script))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/messages", strings.NewReader(
			`{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}`))
		req.Header.Set("x-api-key", "mock-key")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%d retry-after=%q\n", resp.StatusCode, resp.Header.Get("retry-after"))
	}
	// Output:
	// 529 retry-after=""
	// 429 retry-after="2"
	// 200 retry-after=""
}
