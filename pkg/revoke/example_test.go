package revoke_test

import (
	"fmt"
	"time"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/revoke"
)

func ExampleDenylist_Revoked() {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	d := revoke.NewDenylist(func() time.Time { return at })
	_ = d.Add(revoke.Entry{Kind: revoke.KindSubject, Value: "alice", RevokedAt: at, Until: at.Add(24 * time.Hour)})

	old := auth.Identity{Subject: "alice", IssuedAt: at.Add(-time.Hour)}
	fresh := auth.Identity{Subject: "alice", IssuedAt: at.Add(time.Minute)}
	fmt.Println(d.Revoked(old), d.Revoked(fresh))
	// Output: true false
}
