package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultHealthURL(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "http://127.0.0.1:5001/health"},
		{map[string]string{"KEYWARD_ADDR": ":8443"}, "http://127.0.0.1:8443/health"},
		{map[string]string{"KEYWARD_ADDR": "0.0.0.0:8443", "KEYWARD_TLS_CERT_FILE": "/tls/tls.crt"}, "https://127.0.0.1:8443/health"},
		{map[string]string{"KEYWARD_ADDR": "nonsense"}, "http://127.0.0.1:5001/health"},
	} {
		require.Equal(t, tt.want, defaultHealthURL(func(k string) string { return tt.env[k] }))
	}
}

// Only a loopback https probe skips verification.
func TestHealthTransportVerifiesAllButLoopback(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:5001/health", "https://[::1]:5001/health", "https://localhost:5001/health"} {
		require.NotNil(t, healthTransport(u), u)
	}
	for _, u := range []string{"http://127.0.0.1:5001/health", "https://gateway.example.com/health", "https://10.0.0.7/health", "::"} {
		require.Nil(t, healthTransport(u), u)
	}
}
