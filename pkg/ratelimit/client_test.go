package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestNewRedisClientModes(t *testing.T) {
	t.Run("url", func(t *testing.T) {
		c, err := NewRedisClient(RedisConfig{URL: "redis://:s3cret@127.0.0.1:6390/2"})
		require.NoError(t, err)
		defer c.Close()
		opt := c.(*redis.Client).Options()
		require.True(t, opt.ContextTimeoutEnabled)
		require.Equal(t, "127.0.0.1:6390", opt.Addr)
		require.Equal(t, 2, opt.DB)
		require.Equal(t, "s3cret", opt.Password)
		require.Equal(t, time.Second, opt.DialTimeout)
		require.Equal(t, 500*time.Millisecond, opt.ReadTimeout)
		require.Equal(t, 500*time.Millisecond, opt.WriteTimeout)
		require.Equal(t, 20, opt.PoolSize)
		require.Nil(t, opt.TLSConfig)
	})
	t.Run("rediss and password override", func(t *testing.T) {
		c, err := NewRedisClient(RedisConfig{URL: "rediss://cache.example.com:6380?read_timeout=2s", Password: "from-file"})
		require.NoError(t, err)
		defer c.Close()
		opt := c.(*redis.Client).Options()
		require.NotNil(t, opt.TLSConfig)
		require.Equal(t, "cache.example.com", opt.TLSConfig.ServerName)
		require.Equal(t, "from-file", opt.Password)
		require.Equal(t, 2*time.Second, opt.ReadTimeout, "URL options win")
	})
	t.Run("sentinel", func(t *testing.T) {
		c, err := NewRedisClient(RedisConfig{SentinelMaster: "mymaster", SentinelAddrs: []string{"127.0.0.1:26379", "127.0.0.1:26380"}})
		require.NoError(t, err)
		defer c.Close()
		cl, ok := c.(*redis.Client)
		require.True(t, ok, "a failover client is a *redis.Client")
		require.True(t, cl.Options().ContextTimeoutEnabled)
	})
	t.Run("cluster", func(t *testing.T) {
		c, err := NewRedisClient(RedisConfig{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}})
		require.NoError(t, err)
		defer c.Close()
		cl, ok := c.(*redis.ClusterClient)
		require.True(t, ok)
		require.True(t, cl.Options().ContextTimeoutEnabled)
		require.Equal(t, 20, cl.Options().PoolSize)
	})
}

func TestNewRedisClientRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RedisConfig
		want []string
	}{
		{"nothing", RedisConfig{}, []string{"no redis URL"}},
		{"two modes", RedisConfig{URL: "redis://a:1", ClusterAddrs: []string{"b:2"}}, []string{"only one"}},
		{"scheme", RedisConfig{URL: "http://127.0.0.1:6379"}, []string{"redis:// or rediss://"}},
		{"no host", RedisConfig{URL: "redis://"}, []string{"no host"}},
		{"port", RedisConfig{URL: "redis://127.0.0.1:99999"}, []string{"port must be 1-65535"}},
		{"sentinel without master", RedisConfig{SentinelAddrs: []string{"a:1"}}, []string{"without a master name"}},
		{"sentinel without addrs", RedisConfig{SentinelMaster: "m"}, []string{"without sentinel addresses"}},
		{"bad addrs, all reported", RedisConfig{ClusterAddrs: []string{"nohost", "h:0", "h:x"}}, []string{`"nohost" must be host:port`, `"h:0"`, `"h:x"`}},
		{"negatives", RedisConfig{URL: "redis://a:1", DB: -1, DialTimeout: -1, PoolSize: -1}, []string{"database number", "dial timeout", "pool size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRedisClient(tc.cfg)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestRedisClientErrorsNeverShowPasswords(t *testing.T) {
	for _, raw := range []string{
		"redis://user:hunter2@127.0.0.1:6379/x/y",     // bad path, from ParseURL
		"redis://user:hunter2@127.0.0.1:6379?bogus=1", // unknown option
		"redis://user:hunter2@127.0.0.1:6379/%zz",     // url.Parse fails on the whole thing
		"ftp://user:hunter2@127.0.0.1:6379",           // wrong scheme
		"redis://user:hunter2@127.0.0.1:0",            // bad port
	} {
		_, err := NewRedisClient(RedisConfig{URL: raw})
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), "hunter2", raw)
	}
	_, err := NewRedisClient(RedisConfig{URL: "http://x", Password: "hunter2", SentinelPassword: "hunter2"})
	require.NotContains(t, err.Error(), "hunter2")
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:pw@host:6379/0": "redis://user:redacted@host:6379/0",
		"redis://:pw@host":            "redis://:redacted@host",
		"redis://host:6379":           "redis://host:6379",
		"redis://u:p%zz@host/%zz":     "redis://u:redacted@host/%zz",
		"u:secret@host":               "u:redacted@host",
	} {
		require.Equal(t, want, RedactURL(in), in)
	}
}

// The client NewRedisClient builds really works against a real server, and
// honours the deadline of the caller's context.
func TestNewRedisClientTalksToRedis(t *testing.T) {
	srv := startRedis(t)
	c, err := NewRedisClient(RedisConfig{URL: srv.URL()})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Ping(context.Background()).Err())

	proxy := startSlowProxy(t, srv.Addr)
	proxy.SetDelay(time.Second)
	slow, err := NewRedisClient(RedisConfig{URL: "redis://" + proxy.Addr})
	require.NoError(t, err)
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.Error(t, slow.Ping(ctx).Err())
	require.Less(t, time.Since(start), 200*time.Millisecond)
}
