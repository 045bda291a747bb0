package ledger_test

import (
	"context"
	"fmt"
	"time"

	"github.com/keyward/keyward/pkg/ledger"
)

func ExampleGroup() {
	day := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := ledger.NewMemory(35, func() time.Time { return day })
	for _, c := range []struct {
		who, model string
		usd        float64
	}{{"sub:alice", "claude-sonnet-4-5", 0.0123}, {"sub:bob", "claude-haiku-4-5", 0.002}, {"sub:alice", "claude-haiku-4-5", 0.001}} {
		e := ledger.Entry{Identity: c.who, Model: c.model, Time: day}
		e.Requests, e.CostMicro = 1, ledger.MicroUSD(c.usd)
		l.Record(e) // the Redis ledger returns writes to queue in the settle's pipeline instead
	}
	rows, _ := l.Rows(context.Background(), ledger.Query{From: day, To: day})
	top, _ := ledger.Group(rows, []string{ledger.ByIdentity})
	for _, r := range top {
		fmt.Printf("%s %d requests $%.6f\n", r.Identity, r.Requests, r.CostUSD)
	}
	// Output:
	// sub:alice 2 requests $0.013300
	// sub:bob 1 requests $0.002000
}
