// Package reqctx holds the per-request state the middleware chain and the
// handlers share: one pointer in the gin context instead of many keys.
package reqctx

import (
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/ratelimit"
)

const key = "keyward.state"

// Caller is who is calling, as far as the gateway could verify.
type Caller struct {
	Key     string // limiter identity: "sub:alice", "hmac:ci", "ip:203.0.113.9"
	Subject string // verified subject ("" when anonymous)
	Tier    string
	Method  string // "jwt", "hmac" or "ip"
}

// State is the per-request state.
type State struct {
	RequestID         string
	Start             time.Time
	ClientIP          netip.Addr
	Caller            Caller
	Body              []byte
	Model             string
	UpstreamRequestID string
	Usage             anthropic.Usage
	CostUSD           float64
	Decision          *ratelimit.Decision // the admission decision, for headers
	Stream            bool
	Outcome           string     // short machine-readable outcome for the access log on errors
	PreAuth           netip.Addr // the address holding a pre-authentication slot, until released
	Settlement        string     // "estimated" when usage was settled at a conservative bound

	// RequestedModel is the model the caller sent when an alias changed it
	// (Model is then the upstream id).
	RequestedModel string
	// UpstreamRetry is the retry policy of this request's upstream call:
	// /v1/* callers (SDKs) retry themselves, /api/* callers do not.
	UpstreamRetry anthropic.RetryPolicy
}

// Set stores st in c.
func Set(c *gin.Context, st *State) { c.Set(key, st) }

// Get returns the state of c (never nil: a fresh one if the chain did not set one).
func Get(c *gin.Context) *State {
	if v, ok := c.Get(key); ok {
		return v.(*State)
	}
	st := &State{Start: time.Now()}
	Set(c, st)
	return st
}
