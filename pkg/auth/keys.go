package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// minRSABits is the smallest RSA modulus accepted for signatures (RFC 7518
// §3.3 requires 2048; shorter keys are factorable by a motivated attacker).
const minRSABits = 2048

var (
	hmacAlgs  = []string{"HS256", "HS384", "HS512"}
	rsaAlgs   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecdsaAlgs = []string{"ES256", "ES384", "ES512"}
	edAlgs    = []string{"EdDSA"}
)

// asymmetricAlgs is everything a JWKS may carry. HMAC is deliberately absent:
// a symmetric key published in a JWKS would be a shared secret in public.
var asymmetricAlgs = concat(rsaAlgs, ecdsaAlgs, edAlgs)

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// algsForKey lists the JWS algorithms a verification key may be used with.
// The key's type decides, never the token: this is what stops HS/RS confusion
// and curve mismatches.
func algsForKey(key any) []string {
	switch k := key.(type) {
	case []byte:
		return hmacAlgs
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return nil
		}
		return rsaAlgs
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil
		}
		return edAlgs
	}
	return nil
}

// keyAllowsAlg reports whether key may verify a token whose header says alg.
func keyAllowsAlg(key any, alg string) bool {
	for _, a := range algsForKey(key) {
		if a == alg {
			return true
		}
	}
	return false
}

// parsePublicKeysPEM parses every PEM block in data as a public key: PKIX
// ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") or an X.509 certificate. Several
// blocks give several keys (useful during a key rotation). Private keys are
// refused: the gateway only ever needs the public half, and a private key in
// its configuration is a leak waiting to happen.
func parsePublicKeysPEM(data []byte) ([]any, error) {
	var keys []any
	rest := data
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		key, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("parsing PEM block %d: %w", i, err)
		}
		if algsForKey(key) == nil {
			return nil, fmt.Errorf("parsing PEM block %d: %s", i, describeUnusableKey(key))
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("parsing public key PEM: no PEM block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("parsing public key PEM: trailing data after the last PEM block")
	}
	return keys, nil
}

func parsePEMBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PKIX public key: %w", err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PKCS#1 public key: %w", err)
		}
		return k, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		return c.PublicKey, nil
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, errors.New("found a private key; configure the public key only")
	}
	return nil, fmt.Errorf("unsupported PEM block type %q", block.Type)
}

func describeUnusableKey(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA key has %d bits, at least %d required", k.N.BitLen(), minRSABits)
	case *ecdsa.PublicKey:
		return "unsupported ECDSA curve (use P-256, P-384 or P-521)"
	}
	return fmt.Sprintf("unsupported key type %T", key)
}
