// Command mockanthropic serves an offline emulation of the Anthropic API (see package
// internal/mock for the API, the fault directives and the /_mock/ admin API).
//
//	mockanthropic [--addr :8090] [--api-key mock-key] [--first-byte-ms 0] [--event-delay-ms 0]
//	              [--tls-cert FILE --tls-key FILE | --tls-generate DIR]
//	mockanthropic healthcheck [URL]   exit 0 when /_mock/health answers 200 (for distroless images)
//	mockanthropic version
//
// Plain http is the default. With --tls-cert/--tls-key the mock serves HTTPS with HTTP/2 (as
// api.anthropic.com does); --tls-generate DIR makes a fresh self-signed CA and a certificate for
// 127.0.0.1, ::1 and localhost at start, writes DIR/ca.pem (plus cert.pem and key.pem) and serves
// with it — point the gateway's KEYWARD_UPSTREAM_CA_FILE at DIR/ca.pem.
//
// Every flag has an environment equivalent (MOCKANTHROPIC_ADDR, MOCKANTHROPIC_API_KEY,
// MOCKANTHROPIC_FIRST_BYTE_MS, MOCKANTHROPIC_EVENT_DELAY_MS, MOCKANTHROPIC_STATUS,
// MOCKANTHROPIC_LOG_LEVEL, MOCKANTHROPIC_SHUTDOWN_TIMEOUT, MOCKANTHROPIC_TLS_CERT,
// MOCKANTHROPIC_TLS_KEY, MOCKANTHROPIC_TLS_GENERATE); a flag wins over its variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/keyward/keyward/services/mockanthropic/internal/mock"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "healthcheck":
		err = healthcheck(args[1:], os.Getenv)
	case len(args) > 0 && args[0] == "version":
		fmt.Println(version)
	default:
		err = run(args, os.Getenv, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mockanthropic:", err)
		os.Exit(1)
	}
}

// healthcheck lets a container without a shell or curl probe the mock: it GETs
// /_mock/health on the configured address (or URL) and fails unless it answers 200.
func healthcheck(args []string, getenv func(string) string) error {
	url := ""
	switch len(args) {
	case 0:
		addr := getenv("MOCKANTHROPIC_ADDR")
		if addr == "" {
			addr = ":8090"
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: MOCKANTHROPIC_ADDR %q: %w", addr, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		scheme := "http"
		if getenv("MOCKANTHROPIC_TLS_CERT") != "" || getenv("MOCKANTHROPIC_TLS_GENERATE") != "" {
			scheme = "https"
		}
		url = scheme + "://" + net.JoinHostPort(host, port) + "/_mock/health"
	case 1:
		url = args[0]
	default:
		return errors.New("healthcheck: want at most one argument, the URL")
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: healthTransport(url)}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	return nil
}

type config struct {
	addr            string
	apiKey          string
	firstByteMs     int
	eventDelayMs    int
	status          int
	logLevel        slog.Level
	shutdownTimeout time.Duration
	tlsCert         string
	tlsKey          string
	tlsGenerate     string
}

// parseConfig reads flags over environment over built-in defaults, reporting every problem.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	var problems []error
	envInt := func(name string) int {
		v := getenv(name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s=%q: want a whole number", name, v))
		}
		return n
	}
	envStr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	cfg := &config{}
	fs := flag.NewFlagSet("mockanthropic", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.addr, "addr", envStr("MOCKANTHROPIC_ADDR", ":8090"), "listen address (port 0 picks a free port; the log says which)")
	fs.StringVar(&cfg.apiKey, "api-key", envStr("MOCKANTHROPIC_API_KEY", mock.DefaultAPIKey), "the API key callers must present")
	fs.IntVar(&cfg.firstByteMs, "first-byte-ms", envInt("MOCKANTHROPIC_FIRST_BYTE_MS"), "default delay before each /v1/messages response starts")
	fs.IntVar(&cfg.eventDelayMs, "event-delay-ms", envInt("MOCKANTHROPIC_EVENT_DELAY_MS"), "default delay between SSE events")
	fs.IntVar(&cfg.status, "status", envInt("MOCKANTHROPIC_STATUS"), "default error status for every /v1/messages call (0: none)")
	level := envStr("MOCKANTHROPIC_LOG_LEVEL", "info")
	fs.StringVar(&level, "log-level", level, "debug, info (one line per request), warn or error")
	timeout := envStr("MOCKANTHROPIC_SHUTDOWN_TIMEOUT", "10s")
	fs.StringVar(&timeout, "shutdown-timeout", timeout, "how long SIGTERM waits for open requests and streams")
	fs.StringVar(&cfg.tlsCert, "tls-cert", getenv("MOCKANTHROPIC_TLS_CERT"), "serve HTTPS (and HTTP/2) with this PEM certificate (needs --tls-key)")
	fs.StringVar(&cfg.tlsKey, "tls-key", getenv("MOCKANTHROPIC_TLS_KEY"), "the PEM private key of --tls-cert")
	fs.StringVar(&cfg.tlsGenerate, "tls-generate", getenv("MOCKANTHROPIC_TLS_GENERATE"), "serve HTTPS with a fresh self-signed loopback certificate; writes DIR/ca.pem for clients to trust")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case (cfg.tlsCert == "") != (cfg.tlsKey == ""):
		problems = append(problems, errors.New("TLS: --tls-cert and --tls-key go together"))
	case cfg.tlsCert != "" && cfg.tlsGenerate != "":
		problems = append(problems, errors.New("TLS: give either --tls-cert/--tls-key or --tls-generate, not both"))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := cfg.logLevel.UnmarshalText([]byte(level)); err != nil {
		problems = append(problems, fmt.Errorf("log level %q: want debug, info, warn or error", level))
	}
	d, err := time.ParseDuration(timeout)
	if err != nil || d < 0 {
		problems = append(problems, fmt.Errorf("shutdown timeout %q: want a duration such as 10s", timeout))
	}
	cfg.shutdownTimeout = d
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid configuration: %w", errors.Join(problems...))
	}
	return cfg, nil
}

func run(args []string, getenv func(string) string, out io.Writer) error {
	cfg, err := parseConfig(args, getenv, out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.logLevel}))
	handler, err := mock.New(mock.Options{
		APIKey: cfg.apiKey,
		Logger: logger,
		Defaults: mock.Directives{
			Status:       cfg.status,
			FirstByteMs:  cfg.firstByteMs,
			EventDelayMs: cfg.eventDelayMs,
		},
	})
	if err != nil {
		return err
	}

	tlsConfig, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: streams and the hang directive legitimately run for minutes.
		ReadTimeout:    2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// ServeTLS adds "h2" to the protocols, so TLS callers negotiate HTTP/2.
		TLSConfig: tlsConfig,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	serveErr := make(chan error, 1)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "version", version, "first_byte_ms", cfg.firstByteMs,
		"event_delay_ms", cfg.eventDelayMs, "status", cfg.status)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Streams or hanging requests outlived the drain deadline: cut them off.
		logger.Warn("drain deadline passed, closing open connections", "error", err.Error())
		_ = srv.Close()
	}
	logger.Info("stopped")
	return nil
}
