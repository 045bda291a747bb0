// Package server builds the gateway from its configuration — limiter,
// verifiers, upstream client, metrics, the gin engine — and runs the public
// and admin listeners with a graceful, bounded shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/config"
	"github.com/keyward/keyward/services/gateway/internal/handlers"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/keyfile"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/middleware"
)

// Options are what New needs besides the configuration.
type Options struct {
	Log      *slog.Logger
	Registry *prometheus.Registry // nil: a fresh one
	Now      func() time.Time
	// LogWriteErrors, when set, counts log batches the log writer failed
	// to write (exported as keyward_log_write_errors_total).
	LogWriteErrors func() float64
}

// Server is a built gateway.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *metrics.Metrics
	limiter  ratelimit.Limiter
	redis    redis.UniversalClient
	jwt      *auth.JWTVerifier
	key      *keyfile.Source
	handlers *handlers.Handlers
	engine   *gin.Engine
	pubCert  *certReloader // nil: plain http
	admCert  *certReloader

	redisHealth *redisHealth // nil without Redis
	admin       adminParts   // revocations, usage ledger, admin API (admin.go)

	draining     atomic.Bool
	streamCtx    context.Context
	streamCancel context.CancelFunc
	bgCancel     context.CancelFunc
}

// New builds every part of the gateway. Background work (key file watching,
// JWKS refresh, Redis probing) runs until Close or the end of Run.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{cfg: cfg, log: opts.Log, reg: opts.Registry}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = metrics.New(s.reg, cfg.Version)
	s.metrics.Init(cfg.AllowedModels)
	s.metrics.GlobalBudget.Set(cfg.Default.GlobalDailyUSD)
	s.metrics.SpendAlertPerHour.Set(cfg.SpendAlertPerHour)
	bg, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.streamCtx, s.streamCancel = context.WithCancel(context.Background())

	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	if opts.LogWriteErrors != nil {
		s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyward_log_write_errors_total", Help: "Log batches dropped because writing them failed (the log writer goes on with the next batch).",
		}, opts.LogWriteErrors))
	}
	if err := s.buildTLS(bg); err != nil {
		return nil, err
	}

	for _, w := range cfg.Safety.Warnings {
		s.log.Warn("unsafe setting allowed", "problem", w)
	}
	switch {
	case cfg.UsingMock:
		s.key = keyfile.Static(cfg.MockAPIKey)
		s.log.Warn("no ANTHROPIC_API_KEY configured: using the offline mock upstream", "upstream", cfg.UpstreamURL)
	case cfg.APIKeyFile != "":
		s.key = keyfile.FromFile(cfg.APIKeyFile, 2*time.Second, s.log)
		go s.key.Watch(bg)
	default:
		s.key = keyfile.Static(cfg.APIKey)
	}

	if err := s.buildLimiter(); err != nil {
		return nil, err
	}
	if err := s.buildAdmin(bg, opts.Now); err != nil {
		return nil, err
	}
	redisMetrics := metrics.NewRedisHealth(s.reg)
	if s.redis != nil {
		s.redis.AddHook(redisMetrics.Hook())
		s.redisHealth = &redisHealth{rc: s.redis, m: redisMetrics, log: s.log, backend: s.limiter.Backend,
			mode: cfg.FailureMode, interval: time.Second, warnGap: time.Minute}
		go s.redisHealth.run(bg)
	}
	var hmacV *auth.HMACVerifier
	if len(cfg.HMACKeys) > 0 {
		var store auth.NonceStore = auth.NewMemoryNonceStore()
		if s.redis != nil {
			store = auth.NewRedisNonceStore(s.redis, "")
		}
		v, err := auth.NewHMACVerifier(cfg.HMACKeys, store, auth.HMACOptions{Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("building the HMAC verifier: %w", err)
		}
		hmacV = v
	}
	if cfg.JWTConfigured() {
		v, err := auth.NewJWTVerifier(bg, auth.JWTConfig{
			Secret: cfg.JWTSecret, PublicKeyPEM: cfg.JWTPublicKeyPEM, JWKSURL: cfg.JWTJWKSURL,
			Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TierClaim: cfg.JWTTierClaim, Now: opts.Now, Logger: s.log,
		})
		if err != nil {
			return nil, fmt.Errorf("building the JWT verifier: %w", err)
		}
		s.jwt = v
	}

	client, err := anthropic.NewClient(anthropic.ClientConfig{
		BaseURL:          cfg.UpstreamURL,
		APIKey:           s.key.Key,
		HeaderTimeout:    cfg.HeaderTimeout,
		MaxRetries:       zeroMeansOff(cfg.MaxRetries),
		BreakerThreshold: zeroMeansOff(cfg.BreakerThreshold),
		BreakerCooldown:  cfg.BreakerCooldown,
		RootCAs:          cfg.TLS.UpstreamRootCAs(),
		UserAgent:        "keyward/" + cfg.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("building the upstream client: %w", err)
	}

	s.handlers = &handlers.Handlers{
		Cfg: cfg, Log: s.log, Metrics: s.metrics, Limiter: s.limiter, Client: client, Ledger: s.admin.ledger,
		Version: cfg.Version, Now: opts.Now, StreamCtx: s.streamCtx,
	}
	s.handlers.ReadyCheck = s.readyCheck
	s.handlers.Cache = s.answerCache()
	s.engine, err = s.buildEngine(hmacV)
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Server) buildLimiter() error {
	cfg := s.cfg
	obs := metrics.BackendObserver{M: s.metrics}
	if cfg.RedisURL == "" && cfg.SentinelMaster == "" && len(cfg.ClusterAddrs) == 0 {
		mem, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		if err != nil {
			return fmt.Errorf("building the in-process limiter: %w", err)
		}
		s.limiter = mem
		obs.BackendUp(true)
		return nil
	}
	password := ""
	if cfg.RedisPasswordFile != "" {
		b, err := os.ReadFile(cfg.RedisPasswordFile)
		if err != nil {
			return fmt.Errorf("reading KEYWARD_REDIS_PASSWORD_FILE: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	// go-redis logs dial failures through a process-wide logger; route it
	// into ours so an outage is one structured stream, not raw stderr.
	redis.SetLogger(redisLogger{s.log})
	rc, err := ratelimit.NewRedisClient(ratelimit.RedisConfig{
		URL: cfg.RedisURL, Password: password,
		SentinelMaster: cfg.SentinelMaster, SentinelAddrs: cfg.SentinelAddrs, ClusterAddrs: cfg.ClusterAddrs,
	})
	if err != nil {
		return fmt.Errorf("connecting to Redis: %w", err)
	}
	s.redis = rc
	primary, err := ratelimit.NewRedis(rc, ratelimit.RedisOptions{Logger: s.log})
	if err != nil {
		return fmt.Errorf("building the Redis limiter: %w", err)
	}
	res, err := ratelimit.NewResilient(primary, ratelimit.ResilientOptions{
		FailureMode: ratelimit.FailureMode(cfg.FailureMode), LocalShareDivisor: cfg.LocalShare, Timeout: cfg.RedisTimeout, Observer: obs, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("building the resilient limiter: %w", err)
	}
	s.limiter = res
	return nil
}

// buildEngine assembles the middleware chain. The order matters:
//
//  1. Recover first, so a panic anywhere becomes a logged 500.
//  2. WriteDeadline right after it: every write to the caller, the
//     recovered 500 included, must finish in time (a caller that does not
//     read cannot hold a handler).
//  3. RequestID next: every later line and error carries the id.
//  4. AccessLog and Metrics wrap everything after them, so they see the
//     final status, including rejections by later middleware.
//  5. ClientIP before CORS/auth/limits: the IP (via the trusted proxies only)
//     is the default identity and feeds the allowlist.
//  6. CORS answers preflights for any path and never blocks same-origin or
//     non-browser calls: CORS is not authentication.
//  7. Health and readiness are registered before the protected group: probes
//     never need credentials and never touch Redis or the upstream.
//  8. In the protected group: Shed (cheap refusal before reading bodies,
//     global and per client address), Body (type and size checks, read once,
//     with a deadline that must be earned by progress), then Authn (IP
//     allowlist, HMAC over the same bytes, JWT); once authenticated, the
//     request gives its per-address pre-auth slot back. Rate limits run inside the handlers, because
//     one admission round trip needs the parsed body's token estimate.
func (s *Server) buildEngine(hmacV *auth.HMACVerifier) (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = false
	e.ForwardedByClientIP = true
	e.RemoteIPHeaders = []string{"X-Forwarded-For", "X-Real-IP"}
	e.TrustedPlatform = ""
	var proxies []string
	for _, p := range s.cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	// nil means "trust nobody": gin's default would trust every peer.
	if err := e.SetTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("setting trusted proxies: %w", err)
	}

	h := s.handlers
	e.Use(middleware.Recover(s.log), middleware.WriteDeadline(s.cfg.Safety.WriteTimeout), middleware.RequestID(), middleware.AccessLog(s.log),
		middleware.Metrics(s.metrics), middleware.ClientIP(), middleware.CORS(s.cfg.CORSOrigins))
	e.GET("/health", h.Health())
	e.GET("/ready", h.Ready())
	e.GET("/openapi.json", h.OpenAPI())
	e.NoRoute(func(c *gin.Context) { httperr.Write(c, s.log, httperr.NotFound()) })

	var jwtV middleware.JWTVerifier
	if s.jwt != nil {
		jwtV = s.jwt
	}
	var hv middleware.HMACVerifier
	if hmacV != nil {
		hv = hmacV
	}
	var allow *auth.Allowlist
	if len(s.cfg.IPAllowlist) > 0 {
		allow = auth.NewAllowlist(s.cfg.IPAllowlist)
	}
	authn := middleware.Authn(middleware.AuthnConfig{Allowlist: allow, JWT: jwtV, HMAC: hv, Required: s.cfg.AuthRequired, Metrics: s.metrics, Log: s.log, Revoked: s.admin.denylist})
	shed, authenticated := middleware.Shed(middleware.ShedConfig{Max: s.cfg.MaxInflight, PerAddress: s.cfg.Safety.MaxInflightPerAddress, Metrics: s.metrics, Log: s.log})
	progress := middleware.ReadProgress{Timeout: s.cfg.Safety.BodyTimeout, MinRate: s.cfg.Safety.BodyMinRate}

	api := e.Group("/api", shed, middleware.Body(s.cfg.MaxAPIBodyBytes, progress, s.log), authn, authenticated)
	api.POST("/query", h.Query())
	api.POST("/analytics-query", h.AnalyticsQuery())
	api.GET("/analytics-query-types", h.AnalyticsQueryTypes())
	api.GET("/rate-limit-status", h.RateLimitStatus())

	v1 := e.Group("/v1", shed, middleware.Body(s.cfg.MaxBodyBytes, progress, s.log), authn, authenticated)
	v1.POST("/messages", h.Messages())
	v1.POST("/messages/count_tokens", h.CountTokens())
	v1.GET("/models", h.Models())
	v1.GET("/models/:model_id", h.Model())
	return e, nil
}

// Handler returns the public HTTP handler (for in-process tests and benchmarks).
func (s *Server) Handler() http.Handler { return s.engine }

// Metrics returns the collectors (tests).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// MetricsHandler serves the registry.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})
}

func (s *Server) readyCheck() (bool, map[string]any) {
	upstream := "anthropic"
	if s.cfg.UsingMock {
		upstream = "mock"
	}
	backend := s.limiter.Backend()
	switch backend {
	case "redis", "memory", "degraded":
	default:
		backend = "degraded"
	}
	body := map[string]any{"ratelimit": backend, "upstream": upstream, "version": s.cfg.Version}
	s.readyRedis(body, backend)
	switch {
	case s.draining.Load():
		body["status"] = "draining"
		return false, body
	case !s.key.Loaded():
		body["status"] = "not_ready"
		body["reason"] = "the Anthropic API key is not loaded"
		return false, body
	}
	body["status"] = "ready"
	return true, body
}

// Run serves until ctx ends, then drains: readiness flips to 503 first and
// the gateway keeps serving for KEYWARD_SHUTDOWN_DELAY so load balancers can
// notice; then the listener closes, in-flight requests finish, and open
// streams get until the drain deadline and then end with an SSE error event.
func (s *Server) Run(ctx context.Context, public, admin net.Listener) error {
	pub := newHTTPServer(s.engine)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.MetricsHandler())
	mux.Handle("/admin/", s.AdminHandler())
	adm := newHTTPServer(mux)
	if s.pubCert != nil {
		pub.TLSConfig = s.pubCert.tlsConfig()
	}
	if s.admCert != nil {
		adm.TLSConfig = s.admCert.tlsConfig()
	}

	errc := make(chan error, 2)
	go func() { errc <- serve(pub, public) }()
	go func() { errc <- serve(adm, admin) }()
	s.log.Info("gateway listening", "addr", public.Addr().String(), "metrics_addr", admin.Addr().String(),
		"tls", s.pubCert != nil, "metrics_tls", s.admCert != nil, "version", s.cfg.Version, "ratelimit", s.limiter.Backend(), "upstream", s.cfg.UpstreamURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("listener failed", "error", runErr.Error())
	}
	s.draining.Store(true)
	// From here on every answer closes its connection: a keep-alive
	// connection left idle would race the listener's close, and a request a
	// load balancer sends on it at that moment would be lost.
	pub.SetKeepAlivesEnabled(false)
	if d := s.cfg.ShutdownDelay; d > 0 && runErr == nil {
		// /ready already answers 503 "draining"; keep serving until load
		// balancers have seen it and stopped routing here.
		s.log.Info("shutting down: readiness failing, still serving", "delay", d.String())
		time.Sleep(d)
	}
	s.log.Info("shutting down: draining in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Streams end a little before the deadline so they can close cleanly
	// with an error event rather than be cut mid-event.
	streamDeadline := time.AfterFunc(s.cfg.ShutdownTimeout*9/10, s.streamCancel)
	defer streamDeadline.Stop()
	if err := pub.Shutdown(dctx); err != nil {
		s.log.Warn("drain deadline passed; closing remaining connections", "error", err.Error())
		s.streamCancel()
		_ = pub.Close()
	}
	actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer acancel()
	_ = adm.Shutdown(actx)
	s.Close()
	s.log.Info("gateway stopped")
	return runErr
}

func serve(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		// The certificate comes from TLSConfig.GetCertificate.
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHTTPServer sets every timeout explicitly: gin.Run's server has none, the
// slowloris door. WriteTimeout stays 0 because SSE streams are long-lived;
// their lifetime is capped by KEYWARD_MAX_STREAM_DURATION instead.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// zeroMeansOff maps our "0 = none" to the client's "negative = none" (its
// zero value means "default").
func zeroMeansOff(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// Close releases background work and connections. Safe to call twice.
func (s *Server) Close() {
	if s.bgCancel != nil {
		s.bgCancel()
	}
	if s.streamCancel != nil {
		s.streamCancel()
	}
	if s.jwt != nil {
		s.jwt.Close()
	}
	if s.limiter != nil {
		_ = s.limiter.Close()
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
	if s.handlers != nil {
		s.handlers.Client.CloseIdleConnections()
	}
}
