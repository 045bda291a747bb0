package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAdminSettings(t *testing.T) {
	c, err := Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Equal(t, Admin{LedgerRetentionDays: 35, Ledger: true}, c.Admin, "defaults: no admin API, ledger on for 35 days")

	env := baseEnv()
	env["KEYWARD_ADMIN_TOKEN_FILE"] = "/run/secrets/admin-token"
	env["KEYWARD_LEDGER_RETENTION_DAYS"] = "90"
	env["KEYWARD_LEDGER"] = "off"
	c, err = Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, Admin{TokenFile: "/run/secrets/admin-token", LedgerRetentionDays: 90, Ledger: false}, c.Admin)

	env["KEYWARD_LEDGER_RETENTION_DAYS"] = "0"
	env["KEYWARD_LEDGER"] = "maybe"
	_, err = Load(MapEnv(env), "v1")
	require.ErrorContains(t, err, "KEYWARD_LEDGER_RETENTION_DAYS")
	require.ErrorContains(t, err, `KEYWARD_LEDGER "maybe": want on or off`)
}

func TestRedisTimeout(t *testing.T) {
	c, err := Load(MapEnv(baseEnv()), "v1")
	require.NoError(t, err)
	require.Equal(t, 100*time.Millisecond, c.RedisTimeout)

	env := baseEnv()
	env["KEYWARD_REDIS_TIMEOUT"] = "250ms"
	c, err = Load(MapEnv(env), "v1")
	require.NoError(t, err)
	require.Equal(t, 250*time.Millisecond, c.RedisTimeout)

	for _, bad := range []string{"1ms", "11s", "soon"} {
		env["KEYWARD_REDIS_TIMEOUT"] = bad
		_, err = Load(MapEnv(env), "v1")
		require.ErrorContains(t, err, "KEYWARD_REDIS_TIMEOUT", bad)
	}
}
