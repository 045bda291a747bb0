package server

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(envOf(nil))
	require.NoError(t, err)
	require.Equal(t, Config{Addr: ":8501", GatewayURL: "http://localhost:5001"}, cfg)
}

func TestLoadConfigReadsEnvironment(t *testing.T) {
	secret := strings.Repeat("s", 32)
	cfg, err := LoadConfig(envOf(map[string]string{
		"DASHBOARD_ADDR":         "127.0.0.1:9000",
		"DASHBOARD_GATEWAY_URL":  "https://keyward.example.com/",
		"DASHBOARD_JWT_SECRET":   secret,
		"DASHBOARD_JWT_ISSUER":   "https://idp.example.com",
		"DASHBOARD_JWT_AUDIENCE": "keyward",
	}))
	require.NoError(t, err)
	require.Equal(t, Config{
		Addr: "127.0.0.1:9000", GatewayURL: "https://keyward.example.com/", JWTSecret: []byte(secret),
		JWTIssuer: "https://idp.example.com", JWTAudience: "keyward",
	}, cfg)
}

func TestLoadConfigReportsEveryProblemAtOnce(t *testing.T) {
	_, err := LoadConfig(envOf(map[string]string{
		"DASHBOARD_ADDR":        "8501",
		"DASHBOARD_GATEWAY_URL": "ftp://gw",
		"DASHBOARD_JWT_SECRET":  "short",
	}))
	require.ErrorContains(t, err, "DASHBOARD_ADDR")
	require.ErrorContains(t, err, "DASHBOARD_GATEWAY_URL")
	require.ErrorContains(t, err, "scheme must be http or https")
	require.ErrorContains(t, err, "DASHBOARD_JWT_SECRET: need at least 32 bytes, got 5")
	require.NotContains(t, err.Error(), "short", "the secret itself must not be echoed")
}

func TestLoadConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"gateway URL without host", map[string]string{"DASHBOARD_GATEWAY_URL": "http://"}, "host is missing"},
		{"gateway URL with credentials", map[string]string{"DASHBOARD_GATEWAY_URL": "http://u:p@gw:5001"}, "must not carry credentials"},
		{"gateway URL with query", map[string]string{"DASHBOARD_GATEWAY_URL": "http://gw:5001/?x=1"}, "must not carry credentials, a query"},
		{"gateway URL that would break the CSP", map[string]string{"DASHBOARD_GATEWAY_URL": "http://gw;script-src:1"}, "DASHBOARD_GATEWAY_URL"},
		{"issuer without secret", map[string]string{"DASHBOARD_JWT_ISSUER": "x"}, "only together with DASHBOARD_JWT_SECRET"},
		{"address without port", map[string]string{"DASHBOARD_ADDR": "localhost"}, "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(envOf(tt.env))
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), ":pw@", "a password in the URL is not echoed")
		})
	}
}

// The dashboard must never hold the Anthropic key, so it must not even
// look at the variables that carry it.
func TestLoadConfigNeverReadsTheAPIKey(t *testing.T) {
	var asked []string
	_, err := LoadConfig(func(k string) string {
		asked = append(asked, k)
		if strings.HasPrefix(k, "ANTHROPIC") {
			return "sk-ant-should-never-be-read"
		}
		return ""
	})
	require.NoError(t, err)
	require.NotEmpty(t, asked)
	for _, k := range asked {
		require.True(t, strings.HasPrefix(k, "DASHBOARD_"), "read %s", k)
	}
}

func TestHealthURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{":8501", "http://127.0.0.1:8501/health"},
		{"0.0.0.0:8501", "http://127.0.0.1:8501/health"},
		{"[::]:8501", "http://[::1]:8501/health"},
		{"10.1.2.3:9000", "http://10.1.2.3:9000/health"},
		{"localhost:8501", "http://localhost:8501/health"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := HealthURL(tt.addr)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := HealthURL("8501")
	require.Error(t, err)
}

func TestLoadConfigOperatorPage(t *testing.T) {
	cfg, err := LoadConfig(envOf(map[string]string{
		"DASHBOARD_ADMIN_URL":        "http://gateway:9464",
		"DASHBOARD_ADMIN_TOKEN_FILE": "/run/secrets/admin_token",
		"DASHBOARD_COOKIE_SECURE":    "true",
	}))
	require.NoError(t, err)
	require.Equal(t, "http://gateway:9464", cfg.AdminURL)
	require.Equal(t, "/run/secrets/admin_token", cfg.AdminTokenFile)
	require.True(t, cfg.SecureCookies)

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"URL without token file", map[string]string{"DASHBOARD_ADMIN_URL": "http://gateway:9464"}, "set both to enable the operator page, or neither"},
		{"token file without URL", map[string]string{"DASHBOARD_ADMIN_TOKEN_FILE": "/run/secrets/t"}, "set both"},
		{"URL with credentials", map[string]string{"DASHBOARD_ADMIN_URL": "http://admin:pw@gateway:9464", "DASHBOARD_ADMIN_TOKEN_FILE": "/t"}, "DASHBOARD_ADMIN_URL: \"http://admin:"},
		{"URL not http", map[string]string{"DASHBOARD_ADMIN_URL": "redis://gateway:9464", "DASHBOARD_ADMIN_TOKEN_FILE": "/t"}, "DASHBOARD_ADMIN_URL"},
		{"cookie flag", map[string]string{"DASHBOARD_COOKIE_SECURE": "yes"}, `DASHBOARD_COOKIE_SECURE "yes": want true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(envOf(tt.env))
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), ":pw@", "a password in the URL is not echoed")
		})
	}
}
