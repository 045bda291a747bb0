// Command gateway is keyward's API gateway: it keeps the Anthropic key on the
// server and lets browsers and services call Claude within limits.
//
//	gateway                  serve (configuration from the environment)
//	gateway --check-config   validate the configuration and exit
//	gateway token --sub alice --ttl 1h [--tier pro] [--helper]
//	                         mint a development HS256 JWT with KEYWARD_JWT_SECRET
//	gateway healthcheck [URL]
//	                         GET URL (default http://127.0.0.1:5001/health); exit 0 on 200
//	gateway revoke --jti ID | --sub SUBJECT [--until T | --ttl D] [--remove] | --list
//	                         deny JWTs on every replica (Redis mode)
//	gateway usage [--from D] [--to D] [--identity ID] [--group-by F] [--top N] [--format F]
//	                         who spent what, from the usage ledger in Redis
//	gateway version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/services/gateway/internal/config"
	"github.com/keyward/keyward/services/gateway/internal/logbuf"
	"github.com/keyward/keyward/services/gateway/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintln(stdout, version)
			return 0
		case "token":
			return mintToken(args[1:], stdout, stderr)
		case "healthcheck":
			return healthcheck(args[1:], stderr)
		case "revoke":
			return revokeCmd(args[1:], stdout, stderr)
		case "usage":
			return usageCmd(args[1:], stdout, stderr)
		case "--check-config", "-check-config":
			return checkConfig(stdout, stderr)
		case "-h", "--help", "help":
			fmt.Fprintln(stdout, "usage: gateway [--check-config | token --sub S [--ttl D] [--tier T] [--helper] | healthcheck [URL] | revoke … | usage … | version]")
			return 0
		default:
			fmt.Fprintf(stderr, "gateway: unknown argument %q (try --help)\n", args[0])
			return 2
		}
	}
	env, err := config.FromEnvironment(".")
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	cfg, err := config.Load(env, version)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	log, closeLog, logErrors := newLogger(stderr, cfg.LogLevel)
	defer closeLog()
	srv, err := server.New(cfg, server.Options{Log: log, LogWriteErrors: logErrors})
	if err != nil {
		log.Error("starting the gateway failed", "error", err.Error())
		return 1
	}
	pub, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("listening on KEYWARD_ADDR failed", "addr", cfg.Addr, "error", err.Error())
		srv.Close()
		return 1
	}
	adm, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		log.Error("listening on KEYWARD_METRICS_ADDR failed", "addr", cfg.MetricsAddr, "error", err.Error())
		pub.Close()
		srv.Close()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := srv.Run(ctx, pub, adm); err != nil {
		return 1
	}
	return 0
}

// newLogger writes JSON lines through a small buffer flushed at least every
// 100 ms, so a busy gateway makes one write syscall per batch of access-log
// lines rather than one per request. Warnings and errors are written before
// the call that logs them returns (after the lines buffered before them), a
// failed write drops only its batch (counted by the returned function, for
// keyward_log_write_errors_total), and closing writes out the rest; a
// SIGKILL can lose at most the last 100 ms of info lines.
func newLogger(w io.Writer, level string) (log *slog.Logger, closeLog func(), writeErrors func() float64) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	lw, err := logbuf.New(w, logbuf.Options{})
	if err != nil {
		return slog.New(slog.NewJSONHandler(w, opts)), func() {}, nil
	}
	h := logbuf.SyncAbove(slog.NewJSONHandler(lw, opts), lw, slog.LevelWarn)
	return slog.New(h), func() { _ = lw.Close() }, func() float64 { return float64(lw.WriteErrors()) }
}

func checkConfig(stdout, stderr io.Writer) int {
	env, err := config.FromEnvironment(".")
	var cfg *config.Config
	if err == nil {
		cfg, err = config.Load(env, version)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	for _, w := range cfg.Safety.Warnings {
		fmt.Fprintln(stderr, "gateway: warning:", w)
	}
	fmt.Fprintln(stdout, "configuration OK")
	return 0
}

func mintToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "subject (the caller's identity for limits)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime (default 1h; 15m with --helper)")
	tier := fs.String("tier", "", "limits tier (a key under tiers: in KEYWARD_CONFIG)")
	helper := fs.Bool("helper", false, "for Claude Code's apiKeyHelper: a short-lived token (15m unless --ttl), and nothing but the token on stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ttlSet := false
	fs.Visit(func(f *flag.Flag) { ttlSet = ttlSet || f.Name == "ttl" })
	if *helper && !ttlSet {
		// Claude Code calls the helper again every 5 minutes (and on a
		// 401), so a token that outlives a few refreshes is enough, and a
		// leaked one is useless soon.
		*ttl = helperTTL
	}
	if *ttl <= 0 || *ttl > maxTokenTTL {
		fmt.Fprintf(stderr, "gateway token: --ttl must be between 1s and %s\n", maxTokenTTL)
		return 2
	}
	if *sub == "" {
		fmt.Fprintln(stderr, "gateway token: --sub is required")
		return 2
	}
	env, err := config.FromEnvironment(".")
	if err != nil {
		fmt.Fprintln(stderr, "gateway token:", err)
		return 1
	}
	secret, _ := env("KEYWARD_JWT_SECRET")
	if f, ok := env("KEYWARD_JWT_SECRET_FILE"); ok && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "gateway token: reading KEYWARD_JWT_SECRET_FILE:", err)
			return 1
		}
		secret = string(trimSpace(b))
	}
	if len(secret) < 32 {
		fmt.Fprintln(stderr, "gateway token: set KEYWARD_JWT_SECRET (at least 32 bytes) to mint a development token")
		return 1
	}
	iss, _ := env("KEYWARD_JWT_ISSUER")
	aud, _ := env("KEYWARD_JWT_AUDIENCE")
	tok, err := auth.MintHS256([]byte(secret), auth.MintClaims{Subject: *sub, Tier: *tier, Issuer: iss, Audience: aud, TTL: *ttl, Now: time.Now()})
	if err != nil {
		fmt.Fprintln(stderr, "gateway token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

const (
	// helperTTL is the lifetime of a token minted with --helper.
	helperTTL = 15 * time.Minute
	// maxTokenTTL bounds any minted token: development tokens are not
	// long-lived credentials.
	maxTokenTTL = 30 * 24 * time.Hour
)

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// healthcheck lets distroless containers (no shell, no curl) probe themselves.
func healthcheck(args []string, stderr io.Writer) int {
	url := defaultHealthURL(os.Getenv)
	if len(args) > 0 {
		url = args[0]
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: healthTransport(url)}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "healthcheck: status", resp.StatusCode)
		return 1
	}
	return 0
}
