package auth

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashSubject is what the gateway sends upstream as metadata.user_id: a
// stable pseudonym (hex SHA-256 of "keyward:"+sub, first 32 hex digits) that
// lets Anthropic correlate abuse per user without learning who the user is.
func HashSubject(sub string) string {
	sum := sha256.Sum256([]byte("keyward:" + sub))
	return hex.EncodeToString(sum[:16])
}
