package middleware

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSessionIDIsSanitised(t *testing.T) {
	for in, want := range map[string]string{
		"3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f": "3f2b8c1e-5d4a-4e7b-9c2d-1a2b3c4d5e6f",
		"":                                     "",
		"a b":                                  "",
		`x","level":"ERROR`:                    "",
		strings.Repeat("a", 64):                strings.Repeat("a", 64),
		strings.Repeat("a", 65):                "",
		"sess:01.a_b":                          "sess:01.a_b",
	} {
		require.Equal(t, want, SessionID(in), in)
	}
}
