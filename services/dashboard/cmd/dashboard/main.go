// Command dashboard serves the keyward browser dashboard.
//
//	dashboard               serve on DASHBOARD_ADDR (default :8501)
//	dashboard healthcheck   GET this server's /health; exit 0 when healthy
//
// The page calls the gateway at DASHBOARD_GATEWAY_URL from the browser.
// With DASHBOARD_JWT_SECRET set, the page gets short-lived tokens from this
// server. With DASHBOARD_ADMIN_URL and DASHBOARD_ADMIN_TOKEN_FILE set, it
// serves the operator page (/ops) over the gateway's admin API. The
// dashboard never reads ANTHROPIC_API_KEY.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyward/keyward/services/dashboard/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "healthcheck":
			os.Exit(healthcheck())
		case "version":
			fmt.Println(version)
			return
		default:
			fmt.Fprintf(os.Stderr, "usage: dashboard [healthcheck|version]\n")
			os.Exit(2)
		}
	}
	if err := run(logger); err != nil {
		logger.Error("dashboard stopped", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	cfg, err := server.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	opts := server.Options{GatewayURL: cfg.GatewayURL, Version: version, Logger: logger}
	if cfg.JWTSecret != nil {
		opts.Mint = server.HS256Minter(cfg, time.Now)
	}
	if cfg.AdminURL != "" {
		tf, err := server.NewTokenFile(cfg.AdminTokenFile)
		if err != nil {
			return fmt.Errorf("DASHBOARD_ADMIN_TOKEN_FILE: %w", err)
		}
		opts.Ops = &server.OpsOptions{AdminURL: cfg.AdminURL, Token: tf.Token, SecureCookies: cfg.SecureCookies}
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr:              cfg.Addr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	logger.Info("dashboard listening", "addr", cfg.Addr, "gateway_url", cfg.GatewayURL, "tokens", cfg.JWTSecret != nil,
		"operator_page", cfg.AdminURL != "", "version", version)
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", cfg.Addr, err)
	case <-ctx.Done():
	}
	logger.Info("dashboard shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// healthcheck lets a distroless image (no curl, no shell) check itself.
func healthcheck() int {
	addr := os.Getenv("DASHBOARD_ADDR")
	if addr == "" {
		addr = server.DefaultAddr
	}
	u, err := server.HealthURL(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: status", resp.StatusCode)
		return 1
	}
	return 0
}
