// Package metrics defines the gateway's Prometheus metrics (the contract in
// DESIGN.md). Collectors are registered on an injected Registerer so tests
// get a fresh registry each. Labels never carry IPs, users or raw paths.
package metrics

import (
	"runtime"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/pkg/anthropic"
)

// Metrics holds every collector of the gateway.
type Metrics struct {
	HTTPRequests      *prometheus.CounterVec
	HTTPDuration      *prometheus.HistogramVec
	UpstreamRequests  *prometheus.CounterVec
	UpstreamDuration  *prometheus.HistogramVec
	UpstreamRetries   *prometheus.CounterVec
	CircuitOpen       prometheus.Gauge
	Tokens            *prometheus.CounterVec
	CostUSD           *prometheus.CounterVec
	Unpriced          *prometheus.CounterVec
	RateLimitRejects  *prometheus.CounterVec
	BackendUp         prometheus.Gauge
	FallbackDecisions *prometheus.CounterVec
	AuthFailures      *prometheus.CounterVec
	Inflight          prometheus.Gauge
	StreamsActive     prometheus.Gauge
	GlobalBudget      prometheus.Gauge
	SpendAlertPerHour prometheus.Gauge
	BuildInfo         *prometheus.GaugeVec
	// CacheRequests counts cacheable catalog queries by result (hit, miss, hit_refused).
	CacheRequests *prometheus.CounterVec
	// SourceRequests counts calls to the catalog's server-side data sources by result.
	SourceRequests *prometheus.CounterVec
	// SettlementsEstimated counts calls settled at a conservative bound, by the phase they ended in.
	SettlementsEstimated *prometheus.CounterVec
	ModelRequests        *prometheus.CounterVec
}

var httpBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// New creates and registers the collectors.
func New(reg prometheus.Registerer, version string) *Metrics {
	m := &Metrics{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_http_requests_total", Help: "HTTP requests handled, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyward_http_request_duration_seconds", Help: "Time to handle an HTTP request (for streams: until the stream ends).", Buckets: httpBuckets,
		}, []string{"route"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_upstream_requests_total", Help: "Calls to the Anthropic API, by model and upstream status (error, timeout, circuit_open when none).",
		}, []string{"model", "code"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyward_upstream_request_duration_seconds", Help: "Time to the upstream's response headers, including retries.", Buckets: httpBuckets,
		}, []string{"model"}),
		UpstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_upstream_retries_total", Help: "Upstream attempts that were retries of an earlier attempt.",
		}, []string{"model"}),
		CircuitOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_upstream_circuit_open", Help: "1 while the upstream circuit breaker is open.",
		}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_tokens_total", Help: "Tokens metered from upstream usage, by model and kind (input, output, cache_read, cache_write).",
		}, []string{"model", "kind"}),
		CostUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_cost_usd_total", Help: "Cost of upstream usage in USD, from the price table.",
		}, []string{"model"}),
		Unpriced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_unpriced_requests_total", Help: "Upstream calls whose model has no price: tokens are counted, cost is unknown.",
		}, []string{"model"}),
		RateLimitRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_ratelimit_rejections_total", Help: "Requests refused by a limit (requests, tokens, budget, global_budget, streams, backend, inflight, inflight_address).",
		}, []string{"limit"}),
		BackendUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_ratelimit_backend_up", Help: "1 when the rate-limit backend works (Redis reachable, or in-process mode); 0 while a fallback is in effect.",
		}),
		FallbackDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_ratelimit_fallback_decisions_total", Help: "Admission decisions taken by the failure policy while Redis was unreachable.",
		}, []string{"mode", "decision"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_auth_failures_total", Help: "Rejected credentials, by reason.",
		}, []string{"reason"}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_inflight_requests", Help: "Requests being handled now (health and metrics excluded).",
		}),
		StreamsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_streams_active", Help: "Open SSE streams.",
		}),
		GlobalBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_budget_global_daily_usd", Help: "Configured global daily USD cap (0 when off).",
		}),
		SpendAlertPerHour: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_spend_alert_usd_per_hour", Help: "Configured USD/hour threshold for the token spend alert.",
		}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyward_build_info", Help: "Build information; always 1.",
		}, []string{"version", "goversion"}),
	}
	reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.UpstreamRequests, m.UpstreamDuration, m.UpstreamRetries,
		m.CircuitOpen, m.Tokens, m.CostUSD, m.Unpriced, m.RateLimitRejects, m.BackendUp, m.FallbackDecisions,
		m.AuthFailures, m.Inflight, m.StreamsActive, m.GlobalBudget, m.SpendAlertPerHour, m.BuildInfo)
	m.SettlementsEstimated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_settlements_estimated_total", Help: "Calls settled at a conservative bound because their final usage never arrived (reason: before_message_start, in_thinking, in_output, budget_stop, no_response)."}, []string{"reason"})
	reg.MustRegister(m.SettlementsEstimated)
	m.CacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_cache_requests_total", Help: "Cacheable analytics queries by result: hit (served from the shared answer cache, no upstream call), miss, hit_refused (a hit over the caller's request rate)."}, []string{"result"})
	reg.MustRegister(m.CacheRequests)
	m.SourceRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_analytics_source_requests_total", Help: "Calls to analytics data sources by result: ok, or why the data was refused (unreachable, redirect, timeout, bad_status, bad_content_type, too_large, bad_json, schema_mismatch)."}, []string{"result"})
	reg.MustRegister(m.SourceRequests)
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	// Both labels come from the configuration (allowed ids and aliases),
	// counted only after the allowlist check passed, so their values are bounded.
	m.ModelRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_model_requests_total", Help: "/v1/messages calls that passed validation, by the model the caller sent (an alias or an id) and the upstream model it was routed to.",
	}, []string{"requested_model", "model"})
	reg.MustRegister(m.ModelRequests)
	return m
}

// Known label values, created at zero on start-up so dashboards and alerts
// see every series from the first scrape (a counter's first increase is
// otherwise invisible to rate()).
var (
	LimitLabels       = []string{"requests", "tokens", "budget", "global_budget", "streams", "backend", "inflight", "inflight_address"}
	AuthReasonLabels  = []string{"missing", "malformed", "too_large", "bad_signature", "bad_algorithm", "expired", "not_yet_valid", "bad_claims", "unknown_key", "bad_timestamp", "replay", "ip_denied", "revoked"}
	TokenKindLabels   = []string{"input", "output", "cache_read", "cache_write"}
	fallbackModes     = []string{"local", "open", "closed"}
	fallbackDecisions = []string{"allowed", "denied"}
)

// Init creates the known series at zero for the allowed models.
func (m *Metrics) Init(models []string) {
	for _, l := range LimitLabels {
		m.RateLimitRejects.WithLabelValues(l)
	}
	for _, r := range AuthReasonLabels {
		m.AuthFailures.WithLabelValues(r)
	}
	for _, mode := range fallbackModes {
		for _, d := range fallbackDecisions {
			m.FallbackDecisions.WithLabelValues(mode, d)
		}
	}
	for _, model := range models {
		for _, k := range TokenKindLabels {
			m.Tokens.WithLabelValues(model, k)
		}
		m.CostUSD.WithLabelValues(model)
		m.UpstreamRetries.WithLabelValues(model)
		m.Unpriced.WithLabelValues(model)
	}
}

// ObserveUsage records the metered usage and cost of one upstream call.
func (m *Metrics) ObserveUsage(model string, u anthropic.Usage, cost float64, priced bool) {
	if u.InputTokens > 0 {
		m.Tokens.WithLabelValues(model, "input").Add(float64(u.InputTokens))
	}
	if u.OutputTokens > 0 {
		m.Tokens.WithLabelValues(model, "output").Add(float64(u.OutputTokens))
	}
	if u.CacheReadInputTokens > 0 {
		m.Tokens.WithLabelValues(model, "cache_read").Add(float64(u.CacheReadInputTokens))
	}
	if u.CacheCreationInputTokens > 0 {
		m.Tokens.WithLabelValues(model, "cache_write").Add(float64(u.CacheCreationInputTokens))
	}
	if priced {
		m.CostUSD.WithLabelValues(model).Add(cost)
	} else if u.TotalTokens() > 0 {
		m.Unpriced.WithLabelValues(model).Inc()
	}
}

// StatusCode formats a status code label without allocating for common codes.
func StatusCode(code int) string {
	if code >= 100 && code < 600 {
		return codeStrings[code-100]
	}
	return strconv.Itoa(code)
}

var codeStrings = func() [500]string {
	var a [500]string
	for i := range a {
		a[i] = strconv.Itoa(i + 100)
	}
	return a
}()

// BackendObserver adapts the metrics to the limiter's observer hooks.
type BackendObserver struct{ M *Metrics }

// BackendUp records whether the shared backend works.
func (o BackendObserver) BackendUp(up bool) {
	if up {
		o.M.BackendUp.Set(1)
	} else {
		o.M.BackendUp.Set(0)
	}
}

// FallbackDecision counts a decision taken by the failure policy.
func (o BackendObserver) FallbackDecision(mode string, allowed bool) {
	d := "denied"
	if allowed {
		d = "allowed"
	}
	o.M.FallbackDecisions.WithLabelValues(mode, d).Inc()
}
