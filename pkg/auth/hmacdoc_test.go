package auth

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The worked example of HMAC.md. If any of these change, HMAC.md is wrong.
const (
	docKeyID     = "docs-example"
	docSecret    = "keyward-docs-example-secret-0123456789"
	docNonce     = "7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b"
	docBody      = `{"question":"What is our MRR trend?","context":{}}`
	docCanonical = "keyward-hmac-v1\nPOST\n/api/query\na=1&b=2\n1700000000\n" + docNonce +
		"\ndfbbd004559018e6f61f3acd5314f1247f1cf79ad8ce3e4afd946dc1068028fa"
	docSignature = "e358fc40eae099427b31865ef24fcabdf1959f822e8de7c049520f37c0dce856"
)

func readHMACDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("HMAC.md")
	require.NoError(t, err)
	return string(b)
}

func TestHMACDocWorkedExample(t *testing.T) {
	require.Equal(t, t0.Unix(), int64(1700000000))
	canonical, err := CanonicalString(http.MethodPost, "/api/query", "b=2&a=1", t0.Unix(), docNonce, []byte(docBody))
	require.NoError(t, err)
	require.Equal(t, docCanonical, canonical)

	req, err := http.NewRequest(http.MethodPost, "http://localhost:5001/api/query?b=2&a=1", strings.NewReader(docBody))
	require.NoError(t, err)
	s := Signer{KeyID: docKeyID, Secret: []byte(docSecret), Now: fixedNow, Nonce: func() string { return docNonce }}
	require.NoError(t, s.Sign(req, []byte(docBody)))
	require.Equal(t, "v1="+docSignature, req.Header.Get(HeaderSignature))

	doc := readHMACDoc(t)
	require.Contains(t, doc, "```\n"+docCanonical+"\n```", "HMAC.md canonical string")
	for _, h := range []string{HeaderKeyID, HeaderTimestamp, HeaderNonce, HeaderSignature} {
		require.Contains(t, doc, h+": "+req.Header.Get(h), "HMAC.md headers")
	}
	for _, v := range []string{docKeyID, docSecret, docNonce, docBody} {
		require.Contains(t, doc, "`"+v+"`", "HMAC.md inputs table")
	}
}

// TestHMACDocShellRecipe runs the curl+openssl recipe from HMAC.md with curl
// replaced by a function that prints its arguments, then verifies the
// request it would have sent.
func TestHMACDocShellRecipe(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	doc := readHMACDoc(t)
	_, rest, ok := strings.Cut(doc, "## curl + openssl\n\n```sh\n")
	require.True(t, ok, "recipe block not found")
	script, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)

	cmd := exec.Command(bash, "-euo", "pipefail", "-c", `curl() { printf '%s\n' "$@"; }`+"\n"+script)
	cmd.Env = append(os.Environ(), "TS=1700000000", "NONCE="+docNonce, "GATEWAY=http://gw.test")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	args := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	h := http.Header{}
	var target, body string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-H":
			k, v, _ := strings.Cut(args[i+1], ": ")
			h.Add(k, v)
			i++
		case "--data-binary":
			body = args[i+1]
			i++
		case "-sS":
		default:
			target = args[i]
		}
	}
	require.Equal(t, "v1="+docSignature, h.Get(HeaderSignature))
	require.Equal(t, docBody, body)
	require.Equal(t, "http://gw.test/api/query?b=2&a=1", target)

	v := newHMACVerifier(t, NewMemoryNonceStore(), HMACKey{ID: docKeyID, Secret: []byte(docSecret)})
	id, err := v.Verify(context.Background(), http.MethodPost, "/api/query", "b=2&a=1", h, []byte(body))
	require.NoError(t, err)
	require.Equal(t, "hmac:"+docKeyID, id.Subject)
}
