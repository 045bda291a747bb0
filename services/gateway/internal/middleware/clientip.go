package middleware

import (
	"net/netip"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// ClientIP resolves the caller's address with gin's trusted-proxy logic (the
// engine is configured with exactly KEYWARD_TRUSTED_PROXIES, so forwarding
// headers from anyone else are ignored), normalises it and makes it the
// default limiter identity.
func ClientIP() gin.HandlerFunc {
	return func(c *gin.Context) {
		st := reqctx.Get(c)
		addr, err := netip.ParseAddr(c.ClientIP())
		if err != nil {
			// gin fell back to something unparsable: use the socket peer.
			if ap, perr := netip.ParseAddrPort(c.Request.RemoteAddr); perr == nil {
				addr = ap.Addr()
			}
		}
		st.ClientIP = addr.Unmap()
		st.Caller = reqctx.Caller{Key: auth.IdentityKeyForIP(st.ClientIP), Method: "ip"}
		c.Next()
	}
}

// addressKey is the unit per-address limits count by: the IPv4 address, or
// the IPv6 /64 (one subscriber's usual allocation), as identities are keyed.
func addressKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}
