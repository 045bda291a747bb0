package proxyclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/proxyclient"
)

// fakeGateway stands in for a running keyward gateway so that the
// examples run offline; point New at your gateway's URL instead.
func fakeGateway() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"healthy","timestamp":"2026-11-27T12:00:00Z","version":"1.0.0"}`)
	})
	mux.HandleFunc("POST /api/query", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, part := range []string{"MRR grew ", "5.6% ", "month over month."} {
				fmt.Fprintf(w, "event: delta\ndata: {\"text\":%q}\n\n", part)
			}
			_, _ = io.WriteString(w, "event: done\ndata: {\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":52,\"output_tokens\":8},\"request_id\":\"req-2\"}\n\n")
			return
		}
		if len(body) > 2000 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"Invalid request","message":"question is longer than 2000 characters","fields":["question"]}`)
			return
		}
		_, _ = io.WriteString(w, `{"answer":"MRR grew 5.6% month over month.","model":"claude-sonnet-4-5","usage":{"input_tokens":52,"output_tokens":8},"request_id":"req-1"}`)
	})
	mux.HandleFunc("POST /api/analytics-query", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: delta\ndata: {\"text\":\"Churn is flat \"}\n\nevent: delta\ndata: {\"text\":\"at 2.1%.\"}\n\n"+
				"event: done\ndata: {\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":80,\"output_tokens\":7},\"request_id\":\"req-4\"}\n\n")
			return
		}
		_, _ = io.WriteString(w, `{"answer":"Churn is flat at 2.1%.","model":"claude-sonnet-4-5","usage":{"input_tokens":80,"output_tokens":7},"request_id":"req-3"}`)
	})
	mux.HandleFunc("GET /api/analytics-query-types", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"query_types":{"churn_analysis":{"description":"Churn rate patterns","parameters":{"time_period":{"type":"enum","values":["last_30_days","last_90_days"],"required":true}}}}}`)
	})
	mux.HandleFunc("GET /api/rate-limit-status", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"limit":30,"remaining":27,"reset":1796000040,"reset_after_seconds":6,"window":"60s","policy":"30;w=60","backend":"redis"}`)
	})
	return httptest.NewServer(mux)
}

func ExampleNew() {
	gw := fakeGateway()
	defer gw.Close()

	client, err := proxyclient.New(gw.URL,
		proxyclient.WithBearerToken("eyJhbGciOiJIUzI1NiJ9.example.token"),
		proxyclient.WithMaxRetries(3),
		proxyclient.WithBackoff(250*time.Millisecond, 5*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	h, err := client.Health(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Status, h.Version)
	// Output: healthy 1.0.0
}

func ExampleClient_Query() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	ans, err := client.Query(context.Background(), proxyclient.QueryRequest{
		Question: "What is my current MRR?",
		Context:  map[string]any{"current_mrr": 92148.74, "previous_mrr": 87234.56},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ans.Answer)
	fmt.Println("tokens:", ans.Usage.InputTokens, "in,", ans.Usage.OutputTokens, "out")
	// Output:
	// MRR grew 5.6% month over month.
	// tokens: 52 in, 8 out
}

func ExampleClient_QueryStream() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	stream, err := client.QueryStream(context.Background(), proxyclient.QueryRequest{
		Question: "How is MRR trending?",
		Context:  map[string]any{"current_mrr": 92148.74, "previous_mrr": 87234.56},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for stream.Next() {
		fmt.Printf("%q\n", stream.Text()) // print each piece as it arrives
	}
	if err := stream.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("output tokens:", stream.Final().Usage.OutputTokens)
	// Output:
	// "MRR grew "
	// "5.6% "
	// "month over month."
	// output tokens: 8
}

func ExampleClient_AnalyticsQuery() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	ans, err := client.AnalyticsQuery(context.Background(), "churn_analysis",
		map[string]any{"time_period": "last_90_days"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ans.QueryType+":", ans.Answer)
	// Output: churn_analysis: Churn is flat at 2.1%.
}

func ExampleClient_AnalyticsQueryTypes() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	types, err := client.AnalyticsQueryTypes(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	churn := types["churn_analysis"]
	fmt.Println(churn.Description)
	fmt.Println("time_period:", churn.Parameters["time_period"].Values)
	// Output:
	// Churn rate patterns
	// time_period: [last_30_days last_90_days]
}

func ExampleClient_RateLimitStatus() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	st, err := client.RateLimitStatus(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d of %d left, full again in %.0fs (%s)\n", st.Remaining, st.Limit, st.ResetAfterSeconds, st.Backend)
	// Output: 27 of 30 left, full again in 6s (redis)
}

func ExampleClient_Health() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	h, err := client.Health(context.Background())
	if err != nil {
		fmt.Println("gateway is down:", err)
		return
	}
	fmt.Println(h.Status)
	// Output: healthy
}

func ExampleError() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'x'
	}
	_, err = client.Query(context.Background(), proxyclient.QueryRequest{Question: string(long)})
	var perr *proxyclient.Error
	if errors.As(err, &perr) {
		fmt.Println(perr.Status, perr.Code)
		fmt.Println(perr.Message, perr.Fields)
	}
	fmt.Println("rate limited:", proxyclient.RateLimited(err))
	// Output:
	// 400 Invalid request
	// question is longer than 2000 characters [question]
	// rate limited: false
}

func ExampleWithTokenSource() {
	gw := fakeGateway()
	defer gw.Close()

	// A source that hands out the current short-lived JWT; it is asked
	// before every attempt, so a refreshed token is picked up at once.
	current := func(ctx context.Context) (string, error) {
		return "eyJhbGciOiJIUzI1NiJ9.current.token", nil
	}
	client, err := proxyclient.New(gw.URL, proxyclient.WithTokenSource(current))
	if err != nil {
		log.Fatal(err)
	}
	st, err := client.RateLimitStatus(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Remaining)
	// Output: 27
}

func ExampleClient_AnalyticsQueryStream() {
	gw := fakeGateway()
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	stream, err := client.AnalyticsQueryStream(context.Background(), "churn_analysis",
		map[string]any{"time_period": "last_90_days"})
	if err != nil {
		log.Fatal(err)
	}
	text, err := stream.Collect() // or range over Next/Text to show it as it arrives
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(text)
	// Output: Churn is flat at 2.1%.
}

func ExampleWithSigner() {
	gw := fakeGateway()
	defer gw.Close()

	// A server-side caller signs each request (and each retry afresh) with
	// a key the gateway lists in KEYWARD_HMAC_KEYS_FILE as "reports:<secret>".
	signer := auth.Signer{KeyID: "reports", Secret: []byte("0123456789abcdef0123456789abcdef")}
	client, err := proxyclient.New(gw.URL, proxyclient.WithSigner(signer))
	if err != nil {
		log.Fatal(err)
	}
	ans, err := client.AnalyticsQuery(context.Background(), "churn_analysis",
		map[string]any{"time_period": "last_30_days"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ans.Answer)
	// Output: Churn is flat at 2.1%.
}

func ExampleRateLimited() {
	// A gateway that is out of quota for this caller for the next hour.
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":"budget_exceeded","message":"Daily budget of $5.00 reached; it resets at 00:00 UTC","retry_after":3600}`)
	}))
	defer gw.Close()
	client, err := proxyclient.New(gw.URL)
	if err != nil {
		log.Fatal(err)
	}

	// Waits longer than WithMaxRetryWait (default 60 s) come back at once.
	_, err = client.Query(context.Background(), proxyclient.QueryRequest{Question: "What is my MRR?"})
	if proxyclient.RateLimited(err) {
		var perr *proxyclient.Error
		errors.As(err, &perr)
		fmt.Printf("%s; try again in %s\n", perr.Message, perr.RetryAfter)
	}
	// Output: Daily budget of $5.00 reached; it resets at 00:00 UTC; try again in 1h0m0s
}
