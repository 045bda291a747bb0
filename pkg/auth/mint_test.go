package auth

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestMintHS256(t *testing.T) {
	tok, err := MintHS256([]byte(testSecret), MintClaims{Subject: "alice", TTL: time.Hour, Now: t0})
	require.NoError(t, err)
	c := jwt.MapClaims{}
	_, err = jwt.NewParser(jwt.WithTimeFunc(fixedNow)).ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return []byte(testSecret), nil })
	require.NoError(t, err)
	require.Equal(t, "alice", c["sub"])
	require.EqualValues(t, t0.Unix(), c["iat"])
	require.EqualValues(t, t0.Add(time.Hour).Unix(), c["exp"])
	require.NotContains(t, c, "tier")
	require.NotContains(t, c, "aud")

	// A verifier with no iss/aud requirement accepts it.
	v, err := NewJWTVerifier(context.Background(), JWTConfig{Secret: []byte(testSecret), Now: fixedNow})
	require.NoError(t, err)
	defer v.Close()
	id, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, Identity{Subject: "alice", Method: "jwt"}, withoutTimes(id))
	require.Equal(t, t0.Unix(), id.IssuedAt.Unix(), "iat is reported for subject revocation")

	withID, err := MintHS256([]byte(testSecret), MintClaims{Subject: "alice", ID: "laptop-1", TTL: time.Hour, Now: t0})
	require.NoError(t, err)
	id, err = v.Verify(context.Background(), withID)
	require.NoError(t, err)
	require.Equal(t, "laptop-1", id.TokenID, "jti is reported for revocation")

	for name, bad := range map[string]struct {
		secret string
		c      MintClaims
	}{
		"short secret": {"short", MintClaims{Subject: "a", TTL: time.Hour}},
		"no subject":   {testSecret, MintClaims{TTL: time.Hour}},
		"no ttl":       {testSecret, MintClaims{Subject: "a"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := MintHS256([]byte(bad.secret), bad.c)
			require.Error(t, err)
		})
	}
}

func TestHashSubject(t *testing.T) {
	h := HashSubject("alice@example.com")
	require.Len(t, h, 32)
	_, err := hex.DecodeString(h)
	require.NoError(t, err)
	require.NotContains(t, h, "alice")
	require.Equal(t, h, HashSubject("alice@example.com"), "stable across calls and replicas")
	require.NotEqual(t, h, HashSubject("bob@example.com"))
	// Pinned: changing the salt or the truncation would silently re-key
	// every user's upstream metadata.user_id.
	require.Equal(t, "9224a033b9e463048bd99b3173eb31ba", HashSubject("alice"))
}
