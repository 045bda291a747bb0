package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefixes parses a comma-separated list of CIDRs and bare addresses
// (a bare IPv4 address becomes a /32, IPv6 a /128). Host bits are masked
// off and IPv4-mapped IPv6 prefixes become plain IPv4 prefixes, so that they
// match the unmapped addresses Allowlist compares them with. Empty entries
// are skipped; every bad entry is reported in one error.
func ParsePrefixes(csv string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, field := range strings.Split(csv, ",") {
		s := strings.TrimSpace(field)
		if s == "" {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("parsing %q: %w", s, err))
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("zoned addresses are not supported")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a valid CIDR")
	}
	return normalisePrefix(p), nil
}

// normalisePrefix masks host bits and turns ::ffff:a.b.c.d/n (n >= 96) into
// a.b.c.d/(n-96).
func normalisePrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p
}

// IdentityKeyForIP is the rate-limit identity for an anonymous caller:
// "ip:203.0.113.9" for IPv4 (IPv4-mapped IPv6 unmapped first) and the /64
// for IPv6 ("ip:2001:db8::/64"), because one IPv6 subscriber usually holds a
// whole /64 and could otherwise rotate through 2^64 buckets. The key is
// built from the parsed address, never from header text, so spellings like
// 2001:DB8:0:0::1 and 2001:db8::1 share a bucket. An invalid address gives
// "ip:invalid".
func IdentityKeyForIP(addr netip.Addr) string {
	if !addr.IsValid() {
		return "ip:invalid"
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return "ip:" + addr.String()
	}
	return "ip:" + netip.PrefixFrom(addr, 64).Masked().String()
}

// Allowlist admits client addresses inside any of its prefixes. An empty
// (or nil) allowlist admits everyone.
type Allowlist struct {
	prefixes []netip.Prefix
}

// NewAllowlist builds an allowlist; prefixes are normalised like ParsePrefixes
// does. An invalid (zero) prefix matches nothing but still counts, so a list
// of only bad entries denies everyone instead of silently allowing everyone.
func NewAllowlist(prefixes []netip.Prefix) *Allowlist {
	a := &Allowlist{prefixes: make([]netip.Prefix, 0, len(prefixes))}
	for _, p := range prefixes {
		a.prefixes = append(a.prefixes, normalisePrefix(p))
	}
	return a
}

// Allows reports whether addr may call. IPv4-mapped addresses are unmapped
// first, so ::ffff:10.1.2.3 matches 10.0.0.0/8. An invalid address is only
// allowed by an empty allowlist.
func (a *Allowlist) Allows(addr netip.Addr) bool {
	if a == nil || len(a.prefixes) == 0 {
		return true
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Len returns the number of prefixes; 0 means everyone is allowed.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.prefixes)
}
