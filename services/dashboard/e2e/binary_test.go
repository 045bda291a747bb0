package e2e

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/test/stacktest"
)

// The image is distroless: `dashboard healthcheck` is its only way to
// check itself, so its exit code must tell up from down.
func TestHealthcheckSubcommand(t *testing.T) {
	bin := binaries(t)[stacktest.DashboardPkg]
	d := stacktest.Dashboard(t, bin, 0, map[string]string{"DASHBOARD_GATEWAY_URL": "http://127.0.0.1:5001"})

	run := func(addr string) (int, string) {
		cmd := exec.Command(bin, "healthcheck")
		cmd.Env = []string{"DASHBOARD_ADDR=" + addr}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}
	code, out := run("127.0.0.1:" + strconv.Itoa(d.Port))
	require.Equal(t, 0, code, out)
	code, _ = run(":" + strconv.Itoa(d.Port)) // as in the image: listen on all, check loopback
	require.Equal(t, 0, code)

	d.Stop()
	code, out = run("127.0.0.1:" + strconv.Itoa(d.Port))
	require.Equal(t, 1, code)
	require.Contains(t, out, "connection refused")
}

// A misconfigured dashboard must refuse to start and say every problem at
// once, without echoing the secret.
func TestBadConfigurationStopsStartup(t *testing.T) {
	bin := binaries(t)[stacktest.DashboardPkg]
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"DASHBOARD_ADDR=nonsense",
		"DASHBOARD_GATEWAY_URL=javascript:alert(1)",
		"DASHBOARD_JWT_SECRET=tooshort-s3cr3t",
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.ExitCode())
	for _, want := range []string{"DASHBOARD_ADDR", "DASHBOARD_GATEWAY_URL", "DASHBOARD_JWT_SECRET"} {
		require.Contains(t, string(out), want)
	}
	require.False(t, strings.Contains(string(out), "tooshort-s3cr3t"), "the secret was printed: %s", out)

	cmd = exec.Command(bin, "frobnicate")
	out, err = cmd.CombinedOutput()
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.ExitCode())
	require.Contains(t, string(out), "usage: dashboard")
}
