package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
		str  string
	}{
		{"30/60s", Limit{30, 60 * time.Second, 30}, "30/60s"},
		{"100/1m", Limit{100, time.Minute, 100}, "100/60s"},
		{"10/s", Limit{10, time.Second, 10}, "10/1s"},
		{"5000/1h", Limit{5000, time.Hour, 5000}, "5000/3600s"},
		{"7/m", Limit{7, time.Minute, 7}, "7/60s"},
		{" 2 / 500ms ", Limit{2, 500 * time.Millisecond, 2}, "2/500ms"},
		{"1/24h", Limit{1, 24 * time.Hour, 1}, "1/86400s"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLimit(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.str, got.String())
			again, err := ParseLimit(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again, "String round-trips")
		})
	}
}

func TestParseLimitRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "want RATE/PERIOD"},
		{"30", "want RATE/PERIOD"},
		{"0/60s", "rate must be"},
		{"-5/60s", "rate must be"},
		{"abc/60s", "rate must be"},
		{"2000000000/1s", "rate must be"},
		{"30/", "period must be"},
		{"30/forever", "period must be"},
		{"30/-1s", "at least"},
		{"30/0s", "at least"},
		{"30/1us", "at least"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseLimit(tc.in)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, `"`+tc.in+`"`, "the message quotes the input")
		})
	}
}

func TestLimitStringZero(t *testing.T) {
	require.Equal(t, "unlimited", Limit{}.String())
}
