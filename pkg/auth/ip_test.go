package auth

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIdentityKeyForIP(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"203.0.113.9", "ip:203.0.113.9"},
		{"::ffff:198.51.100.7", "ip:198.51.100.7"},
		{"198.51.100.7", "ip:198.51.100.7"},
		{"2001:db8::1", "ip:2001:db8::/64"},
		{"2001:DB8:0:0::1", "ip:2001:db8::/64"},
		{"2001:db8::ffff", "ip:2001:db8::/64"},
		{"2001:db8:0:0:ffff:ffff:ffff:ffff", "ip:2001:db8::/64"},
		{"2001:db8:0:1::1", "ip:2001:db8:0:1::/64"},
		{"fe80::1%eth0", "ip:fe80::/64"},
		{"::1", "ip:::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			require.Equal(t, tc.want, IdentityKeyForIP(netip.MustParseAddr(tc.addr)))
		})
	}
	require.Equal(t, "ip:invalid", IdentityKeyForIP(netip.Addr{}))
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 10.0.0.0/8, 203.0.113.9 ,2001:db8::1,2001:db8::/32,, 192.168.1.77/24, ::ffff:172.16.0.0/108 ")
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("203.0.113.9/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.168.1.0/24"),
		netip.MustParsePrefix("172.16.0.0/12"),
	}, got)

	got, err = ParsePrefixes("")
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = ParsePrefixes("10.0.0.0/8,not-an-ip,10.0.0.0/33,fe80::1%eth0")
	require.Error(t, err)
	require.ErrorContains(t, err, `"not-an-ip"`)
	require.ErrorContains(t, err, `"10.0.0.0/33"`)
	require.ErrorContains(t, err, `"fe80::1%eth0"`)
}

func TestAllowlist(t *testing.T) {
	prefixes, err := ParsePrefixes("10.0.0.0/8,2001:db8::/48,203.0.113.9")
	require.NoError(t, err)
	a := NewAllowlist(prefixes)
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"11.0.0.1", false},
		{"203.0.113.9", true},
		{"203.0.113.10", false},
		{"2001:db8:0:ffff::1", true},
		{"2001:db9::1", false},
		{"::ffff:203.0.113.9", true},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			require.Equal(t, tc.want, a.Allows(netip.MustParseAddr(tc.addr)))
		})
	}
	require.False(t, a.Allows(netip.Addr{}), "an unknown address is not on a list")
	require.Equal(t, 3, a.Len())

	var nilList *Allowlist
	require.True(t, nilList.Allows(netip.MustParseAddr("1.2.3.4")), "nil allows everyone")
	require.True(t, NewAllowlist(nil).Allows(netip.MustParseAddr("1.2.3.4")), "empty allows everyone")

	// Mapped prefixes built by hand still match plain IPv4 clients.
	mapped := NewAllowlist([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")})
	require.True(t, mapped.Allows(netip.MustParseAddr("10.9.9.9")))

	// A list made only of invalid prefixes denies, it never opens up.
	broken := NewAllowlist([]netip.Prefix{{}})
	require.False(t, broken.Allows(netip.MustParseAddr("1.2.3.4")))
}
