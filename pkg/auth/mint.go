package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintClaims describes a development token minted by MintHS256.
type MintClaims struct {
	Subject  string
	Tier     string        // copied into the "tier" claim when set
	Issuer   string        // iss, when set
	Audience string        // aud, when set
	ID       string        // jti, when set (what `gateway revoke --jti` names)
	TTL      time.Duration // lifetime; must be positive
	Now      time.Time     // issue time; zero means time.Now()
}

// MintHS256 signs an HS256 JWT with sub, iat, nbf, exp and the optional
// tier, iss and aud claims. It exists for `gateway token` and tests; real
// deployments get tokens from their IdP.
func MintHS256(secret []byte, c MintClaims) (string, error) {
	if len(secret) < MinHMACSecretBytes {
		return "", fmt.Errorf("minting token: secret is %d bytes, at least %d required", len(secret), MinHMACSecretBytes)
	}
	if c.Subject == "" {
		return "", errors.New("minting token: subject is empty")
	}
	if c.TTL <= 0 {
		return "", errors.New("minting token: TTL must be positive")
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	claims := jwt.MapClaims{
		"sub": c.Subject,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(c.TTL).Unix(),
	}
	if c.Tier != "" {
		claims[defaultTierClaim] = c.Tier
	}
	if c.Issuer != "" {
		claims["iss"] = c.Issuer
	}
	if c.Audience != "" {
		claims["aud"] = c.Audience
	}
	if c.ID != "" {
		claims["jti"] = c.ID
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("minting token: %w", err)
	}
	return s, nil
}
