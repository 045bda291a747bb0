package middleware

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// ShedConfig configures Shed.
type ShedConfig struct {
	Max        int // requests in flight at once, all callers
	PerAddress int // requests in flight per client address before authentication
	Metrics    *metrics.Metrics
	Log        *slog.Logger
}

// Shed refuses work beyond Max in-flight requests at once with an immediate
// 503 and Retry-After, instead of queueing until everything is slow.
//
// Before a request is authenticated (while its body is read and its
// credentials checked) it also holds one of its address's PerAddress slots,
// so one address — opening hundreds of connections that trickle their
// bodies — can hold at most PerAddress of the Max slots and never starve
// everyone else. The returned authenticated middleware, placed after
// authentication, gives the address slot back: from there on the caller's
// own limits (rate, streams, budget) bound it.
func Shed(cfg ShedConfig) (admit, authenticated gin.HandlerFunc) {
	sem := make(chan struct{}, cfg.Max)
	pre := &addressSlots{max: cfg.PerAddress, held: make(map[netip.Addr]int)}
	admit = func(c *gin.Context) {
		st := reqctx.Get(c)
		addr := addressKey(st.ClientIP)
		if addr.IsValid() && !pre.acquire(addr) {
			closeUnread(c)
			cfg.Metrics.RateLimitRejects.WithLabelValues("inflight_address").Inc()
			httperr.Write(c, cfg.Log, httperr.Overloaded("too many requests from this address are in progress; retry shortly", "shed_address", time.Second))
			return
		}
		st.PreAuth = addr
		select {
		case sem <- struct{}{}:
		default:
			if addr.IsValid() {
				pre.release(addr)
				st.PreAuth = netip.Addr{}
			}
			closeUnread(c)
			cfg.Metrics.RateLimitRejects.WithLabelValues("inflight").Inc()
			httperr.Write(c, cfg.Log, httperr.Overloaded("the gateway is at capacity; retry shortly", "shed", time.Second))
			return
		}
		defer func() {
			if st.PreAuth.IsValid() {
				pre.release(st.PreAuth)
				st.PreAuth = netip.Addr{}
			}
			<-sem
		}()
		c.Next()
	}
	authenticated = func(c *gin.Context) {
		if st := reqctx.Get(c); st.PreAuth.IsValid() {
			pre.release(st.PreAuth)
			st.PreAuth = netip.Addr{}
		}
		c.Next()
	}
	return admit, authenticated
}

// addressSlots counts pre-authentication requests per address.
type addressSlots struct {
	mu   sync.Mutex
	max  int
	held map[netip.Addr]int
}

func (a *addressSlots) acquire(addr netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held[addr] >= a.max {
		return false
	}
	a.held[addr]++
	return true
}

func (a *addressSlots) release(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.held[addr]; n > 1 {
		a.held[addr] = n - 1
	} else {
		delete(a.held, addr)
	}
}
