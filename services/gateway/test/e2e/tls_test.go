package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// tlsGet fetches url on a fresh connection (so each call sees the
// certificate the server serves now) and returns the response with its
// body read.
func tlsGet(t *testing.T, url string, cfg *tls.Config) (*http.Response, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func servedSerial(t *testing.T, url string) *big.Int {
	t.Helper()
	resp, _ := tlsGet(t, url, &tls.Config{RootCAs: testenv.RootCAs()})
	return resp.TLS.PeerCertificates[0].SerialNumber
}

// The gateway serves HTTPS itself: TLS 1.2+, HTTP/2 to callers (a stream
// too), the admin listener likewise, and `gateway healthcheck` probes it.
func TestGatewayServesHTTPSWithHTTP2(t *testing.T) {
	mock := testenv.StartMock(t)
	dir := t.TempDir()
	certs := testenv.IssueCert(t, dir)
	adminDir := t.TempDir()
	admin := testenv.IssueCert(t, adminDir)
	gw := testenv.StartGateway(t, mock.URL,
		"KEYWARD_TLS_CERT_FILE="+certs.Cert, "KEYWARD_TLS_KEY_FILE="+certs.Key,
		"KEYWARD_METRICS_TLS_CERT_FILE="+admin.Cert, "KEYWARD_METRICS_TLS_KEY_FILE="+admin.Key)
	require.True(t, strings.HasPrefix(gw.URL, "https://"), gw.URL)

	resp, body := tlsGet(t, gw.URL+"/health", &tls.Config{RootCAs: testenv.RootCAs()})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, 2, resp.ProtoMajor, "callers negotiate HTTP/2")
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))

	// An SSE stream over HTTP/2, end to end.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testenv.RootCAs()}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(streamBody))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err = (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.Equal(t, 2, resp.ProtoMajor)
	require.Contains(t, string(b), "event: message_stop")

	// TLS 1.1 and older are refused.
	old := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testenv.RootCAs(), MaxVersion: tls.VersionTLS11}}
	_, err = (&http.Client{Transport: old}).Get(gw.URL + "/health")
	require.Error(t, err, "TLS 1.1 must be refused")

	// The admin listener serves its own certificate.
	require.True(t, strings.HasPrefix(gw.MetricsURL, "https://"), gw.MetricsURL)
	require.Positive(t, gw.Metric(t, "keyward_tls_cert_expiry_timestamp_seconds", `listener="public"`))
	require.Positive(t, gw.Metric(t, "keyward_tls_cert_expiry_timestamp_seconds", `listener="admin"`))
	require.Equal(t, servedSerial(t, gw.MetricsURL).String(), serialOf(t, admin.Cert).String())

	// The container healthcheck speaks https to its own loopback listener.
	bin := filepath.Join(testenv.Binaries(t), "gateway")
	out, err := exec.Command(bin, "healthcheck", gw.URL+"/health").CombinedOutput()
	require.NoError(t, err, string(out))
	hc := exec.Command(bin, "healthcheck")
	hc.Env = []string{"KEYWARD_ADDR=127.0.0.1:" + strings.TrimPrefix(gw.URL[strings.LastIndexByte(gw.URL, ':'):], ":"), "KEYWARD_TLS_CERT_FILE=" + certs.Cert}
	out, err = hc.CombinedOutput()
	require.NoError(t, err, "healthcheck derives https and the port from the environment: %s", out)
}

// A renewed certificate is served without a restart: new connections see
// the new serial, the process stays the same.
func TestGatewayPicksUpARotatedCertificate(t *testing.T) {
	mock := testenv.StartMock(t)
	dir := t.TempDir()
	first := testenv.IssueCert(t, dir)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_TLS_CERT_FILE="+first.Cert, "KEYWARD_TLS_KEY_FILE="+first.Key)
	before := servedSerial(t, gw.URL+"/health")
	require.Equal(t, serialOf(t, first.Cert).String(), before.String())

	testenv.IssueCert(t, dir) // cert-manager renews the Secret in place
	want := serialOf(t, first.Cert)
	require.NotEqual(t, before.String(), want.String())
	require.Eventually(t, func() bool { return servedSerial(t, gw.URL+"/health").Cmp(want) == 0 },
		15*time.Second, 100*time.Millisecond, "the new certificate is served without a restart")
	require.Eventually(t, func() bool { return strings.Contains(gw.Logs(), "TLS certificate reloaded") },
		5*time.Second, 20*time.Millisecond, "the reload is logged")
	require.Equal(t, 1, strings.Count(gw.Logs(), `"msg":"gateway listening"`), "the same process, never restarted")

	// A broken rotation keeps the last good certificate.
	require.NoError(t, writeFile(first.Cert, "not a certificate"))
	require.Eventually(t, func() bool { return strings.Contains(gw.Logs(), "TLS certificate reload failed") },
		15*time.Second, 50*time.Millisecond)
	require.Equal(t, want.String(), servedSerial(t, gw.URL+"/health").String())
}

// A bad certificate or key stops the gateway at start-up with a message
// naming the variable, never a listener that fails every handshake.
func TestGatewayRefusesABadCertificateAtStartUp(t *testing.T) {
	dir := t.TempDir()
	good := testenv.IssueCert(t, dir)
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, writeFile(bad, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	bin := filepath.Join(testenv.Binaries(t), "gateway")
	for name, env := range map[string][]string{
		"garbage certificate": {"KEYWARD_TLS_CERT_FILE=" + bad, "KEYWARD_TLS_KEY_FILE=" + good.Key},
		"missing key":         {"KEYWARD_TLS_CERT_FILE=" + good.Cert, "KEYWARD_TLS_KEY_FILE=" + filepath.Join(dir, "nope.pem")},
		"only a certificate":  {"KEYWARD_TLS_CERT_FILE=" + good.Cert},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Dir = t.TempDir()
			cmd.Env = append([]string{"ANTHROPIC_API_KEY=" + testenv.MockKey, "KEYWARD_ADDR=127.0.0.1:0", "KEYWARD_METRICS_ADDR=127.0.0.1:0"}, env...)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the gateway must not start: %s", out)
			require.Contains(t, string(out), "KEYWARD_TLS_")
			require.NotContains(t, string(out), "gateway listening")
		})
	}
}

func serialOf(t *testing.T, certFile string) *big.Int {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, strings.TrimSuffix(certFile, "cert.pem")+"key.pem")
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	return leaf.SerialNumber
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
