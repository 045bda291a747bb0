package ratelimit

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says how to reach Redis: exactly one of URL, Sentinel
// (SentinelMaster + SentinelAddrs) or Cluster (ClusterAddrs).
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db or rediss://… for TLS.
	// go-redis query options (?dial_timeout=…) are honoured.
	URL string
	// Username and Password override the URL's (e.g. from
	// KEYWARD_REDIS_PASSWORD_FILE) and authenticate Sentinel/Cluster nodes.
	Username string
	Password string

	// SentinelMaster and SentinelAddrs (host:port) select a Sentinel-managed
	// master; SentinelPassword authenticates to the Sentinels themselves.
	SentinelMaster   string
	SentinelAddrs    []string
	SentinelPassword string
	DB               int // Sentinel only; a URL carries its own

	// ClusterAddrs (host:port) are seed nodes of a Redis Cluster.
	ClusterAddrs []string

	// TLS enables TLS for Sentinel and Cluster connections (a rediss:// URL
	// enables it by itself). nil means plain TCP.
	TLS *tls.Config

	// Timeouts are short on purpose: the limiter sits in front of every
	// request. Zero means the default in brackets.
	DialTimeout  time.Duration // [1s]
	ReadTimeout  time.Duration // [500ms]
	WriteTimeout time.Duration // [500ms]
	PoolSize     int           // [20 per node]
}

// Client defaults; see RedisConfig.
const (
	defaultDialTimeout = time.Second
	defaultIOTimeout   = 500 * time.Millisecond
	defaultPoolSize    = 20
)

// NewRedisClient validates cfg and builds a go-redis client with context
// timeouts enabled (request deadlines bound every call), short socket
// timeouts, a modest pool and at most one retry: a struggling Redis should
// hand over to the failure policy quickly, not be hammered. Error messages
// never contain passwords.
func NewRedisClient(cfg RedisConfig) (redis.UniversalClient, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("configuring redis: %w", err)
	}
	switch {
	case cfg.URL != "":
		opt, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("configuring redis: parsing URL %s: %s", RedactURL(cfg.URL), redactErr(err, cfg.URL))
		}
		if cfg.Username != "" {
			opt.Username = cfg.Username
		}
		if cfg.Password != "" {
			opt.Password = cfg.Password
		}
		opt.ContextTimeoutEnabled = true
		opt.DialTimeout = orDefault(opt.DialTimeout, cfg.DialTimeout, defaultDialTimeout)
		opt.ReadTimeout = orDefault(opt.ReadTimeout, cfg.ReadTimeout, defaultIOTimeout)
		opt.WriteTimeout = orDefault(opt.WriteTimeout, cfg.WriteTimeout, defaultIOTimeout)
		opt.PoolTimeout = orDefault(opt.PoolTimeout, 0, defaultIOTimeout)
		if opt.PoolSize == 0 {
			opt.PoolSize = cfg.poolSize()
		}
		opt.MaxRetries, opt.MinRetryBackoff, opt.MaxRetryBackoff = 1, 8*time.Millisecond, 64*time.Millisecond
		opt.DialerRetries, opt.DialerRetryTimeout = 2, 50*time.Millisecond
		return redis.NewClient(opt), nil
	default:
		// Sentinel (MasterName set) and Cluster share one option set;
		// go-redis picks the client type from it. IsClusterMode keeps a
		// single seed address a Cluster client.
		addrs, cluster := cfg.SentinelAddrs, false
		if cfg.SentinelMaster == "" {
			addrs, cluster = cfg.ClusterAddrs, true
		}
		return redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:                 addrs,
			MasterName:            cfg.SentinelMaster,
			IsClusterMode:         cluster,
			SentinelPassword:      cfg.SentinelPassword,
			Username:              cfg.Username,
			Password:              cfg.Password,
			DB:                    cfg.DB,
			TLSConfig:             cfg.TLS,
			ContextTimeoutEnabled: true,
			DialTimeout:           orDefault(0, cfg.DialTimeout, defaultDialTimeout),
			ReadTimeout:           orDefault(0, cfg.ReadTimeout, defaultIOTimeout),
			WriteTimeout:          orDefault(0, cfg.WriteTimeout, defaultIOTimeout),
			PoolTimeout:           defaultIOTimeout,
			PoolSize:              cfg.poolSize(),
			MaxRetries:            1,
			MinRetryBackoff:       8 * time.Millisecond,
			MaxRetryBackoff:       64 * time.Millisecond,
			DialerRetries:         2,
			DialerRetryTimeout:    50 * time.Millisecond,
		}), nil
	}
}

func (cfg RedisConfig) poolSize() int {
	if cfg.PoolSize > 0 {
		return cfg.PoolSize
	}
	return defaultPoolSize
}

// orDefault keeps a value set in the URL, else the configured one, else def.
func orDefault(fromURL, configured, def time.Duration) time.Duration {
	switch {
	case fromURL != 0:
		return fromURL
	case configured != 0:
		return configured
	}
	return def
}

// validate reports every problem at once, so an operator fixes them in one go.
func (cfg RedisConfig) validate() error {
	var errs []error
	modes := 0
	if cfg.URL != "" {
		modes++
		if err := checkRedisURL(cfg.URL); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.SentinelMaster != "" || len(cfg.SentinelAddrs) > 0 {
		modes++
		if cfg.SentinelMaster == "" {
			errs = append(errs, errors.New("sentinel addresses given without a master name"))
		}
		if len(cfg.SentinelAddrs) == 0 {
			errs = append(errs, errors.New("sentinel master name given without sentinel addresses"))
		}
		errs = append(errs, checkAddrs("sentinel", cfg.SentinelAddrs)...)
	}
	if len(cfg.ClusterAddrs) > 0 {
		modes++
		errs = append(errs, checkAddrs("cluster", cfg.ClusterAddrs)...)
	}
	switch {
	case modes == 0:
		errs = append(errs, errors.New("no redis URL, sentinel or cluster addresses given"))
	case modes > 1:
		errs = append(errs, errors.New("give only one of a redis URL, sentinel settings or cluster addresses"))
	}
	if cfg.DB < 0 {
		errs = append(errs, fmt.Errorf("database number %d is negative", cfg.DB))
	}
	for name, d := range map[string]time.Duration{"dial": cfg.DialTimeout, "read": cfg.ReadTimeout, "write": cfg.WriteTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s timeout %s is negative", name, d))
		}
	}
	if cfg.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("pool size %d is negative", cfg.PoolSize))
	}
	return errors.Join(errs...)
}

func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redis URL %s is not a URL", RedactURL(raw))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("redis URL %s: scheme must be redis:// or rediss://", RedactURL(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("redis URL %s has no host", RedactURL(raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("redis URL %s: port must be 1-65535", RedactURL(raw))
		}
	}
	return nil
}

func checkAddrs(kind string, addrs []string) []error {
	var errs []error
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("%s address %q must be host:port", kind, a))
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s address %q: port must be 1-65535", kind, a))
		}
	}
	return errs
}

// RedactURL returns raw with any password replaced by "redacted", for logs
// and error messages. It works on strings url.Parse rejects too.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest, scheme = raw, ""
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if hasPass {
		user += ":redacted"
	}
	out := user + rest[at:]
	if ok {
		out = scheme + "://" + out
	}
	return out
}

// redactErr renders err without the URL (and so without its password): a
// *url.Error quotes the full URL it failed on.
func redactErr(err error, raw string) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "redacted")
		}
	}
	return strings.ReplaceAll(msg, raw, RedactURL(raw))
}
