package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/pkg/revoke"
	"github.com/keyward/keyward/services/gateway/internal/admin"
	"github.com/keyward/keyward/services/gateway/internal/config"
)

// errNoRedis is the in-process mode's answer: its list and ledger live in
// the serving process, reachable only through its admin API.
var errNoRedis = errors.New("KEYWARD_REDIS_URL is not set: in the in-process mode revocations and usage live in the gateway's memory; use its admin API (POST /admin/revocations, GET /admin/usage on KEYWARD_METRICS_ADDR)")

// redisFromEnv connects to the gateway's Redis as configured in the
// environment (KEYWARD_REDIS_URL, KEYWARD_REDIS_PASSWORD_FILE).
func redisFromEnv() (redis.UniversalClient, error) {
	env, err := config.FromEnvironment(".")
	if err != nil {
		return nil, err
	}
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	url := get("KEYWARD_REDIS_URL")
	if url == "" {
		return nil, errNoRedis
	}
	password := ""
	if f := get("KEYWARD_REDIS_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading KEYWARD_REDIS_PASSWORD_FILE: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	return ratelimit.NewRedisClient(ratelimit.RedisConfig{URL: url, Password: password})
}

// revokeCmd: gateway revoke --jti ID | --sub SUBJECT [--until T | --ttl D] | --list | --remove
func revokeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jti := fs.String("jti", "", "revoke the token with this jti claim")
	sub := fs.String("sub", "", "revoke every token of this subject issued up to now")
	until := fs.String("until", "", "revocation lapses at this RFC 3339 time (the token's exp for --jti)")
	ttl := fs.String("ttl", "", "revocation lapses after this duration (default 24h: at least the longest token lifetime you issue)")
	list := fs.Bool("list", false, "list the revocations in force")
	remove := fs.Bool("remove", false, "lift the revocation of --jti or --sub")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rc, err := redisFromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "gateway revoke:", err)
		return 1
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := revoke.NewRedis(rc, "", revoke.NewDenylist(nil), nil)
	if *list {
		es, err := store.List(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "gateway revoke:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tVALUE\tREVOKED AT\tUNTIL")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Kind, e.Value, e.RevokedAt.Format(time.RFC3339), e.Until.Format(time.RFC3339))
		}
		_ = tw.Flush()
		return 0
	}
	kind, value, err := admin.ParseTarget(*jti, *sub)
	if err != nil {
		fmt.Fprintln(stderr, "gateway revoke:", err, "(--jti ID | --sub SUBJECT, or --list)")
		return 2
	}
	if *remove {
		ok, err := store.Remove(ctx, kind, value)
		if err != nil {
			fmt.Fprintln(stderr, "gateway revoke:", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed: %v\n", ok)
		return 0
	}
	now := time.Now().UTC()
	u, err := admin.ParseUntil(now, *until, *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "gateway revoke:", err)
		return 2
	}
	e := revoke.Entry{Kind: kind, Value: value, RevokedAt: now, Until: u.UTC()}
	if err := store.Add(ctx, e); err != nil {
		fmt.Fprintln(stderr, "gateway revoke:", err)
		return 1
	}
	fmt.Fprintf(stdout, "revoked %s %s until %s (every replica within a second)\n", kind, value, e.Until.Format(time.RFC3339))
	return 0
}

// usageCmd: gateway usage [--from D --to D --identity ID --group-by F,… --top N --format table|json|csv]
func usageCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "first UTC day, YYYY-MM-DD (default today)")
	to := fs.String("to", "", "last UTC day, YYYY-MM-DD (default today)")
	identity := fs.String("identity", "", "one identity, e.g. sub:alice")
	groupBy := fs.String("group-by", "identity,model", "comma separated: identity, model, day, tier")
	top := fs.Int("top", 0, "only the N biggest spenders (rows by cost)")
	format := fs.String("format", "table", "table, json or csv")
	retention := fs.Int("retention-days", ledger.DefaultRetentionDays, "shown in the report only (the gateway's KEYWARD_LEDGER_RETENTION_DAYS)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	q := map[string]string{"from": *from, "to": *to, "identity": *identity, "group_by": *groupBy}
	if *top > 0 {
		q["top"] = fmt.Sprint(*top)
	}
	if *format == "csv" || *format == "json" {
		q["format"] = *format
	} else if *format != "table" {
		fmt.Fprintln(stderr, "gateway usage: --format must be table, json or csv")
		return 2
	}
	p, err := admin.ParseUsage(time.Now(), func(k string) string { return q[k] })
	if err != nil {
		fmt.Fprintln(stderr, "gateway usage:", err)
		return 2
	}
	rc, err := redisFromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "gateway usage:", err)
		return 1
	}
	defer rc.Close()
	l, err := ledger.NewRedis(rc, "", *retention)
	if err != nil {
		fmt.Fprintln(stderr, "gateway usage:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := admin.BuildUsage(ctx, l, p)
	if err != nil {
		fmt.Fprintln(stderr, "gateway usage:", err)
		return 1
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	case "csv":
		if err := admin.EncodeCSV(csv.NewWriter(stdout), rep.Rows); err != nil {
			fmt.Fprintln(stderr, "gateway usage:", err)
			return 1
		}
	default:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "DAY\tIDENTITY\tMODEL\tTIER\tREQUESTS\tINPUT\tOUTPUT\tCACHE READ\tCACHE WRITE\tTOOLS\tCOST USD\t")
		for _, r := range append(rep.Rows, rep.Total) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.6f\t\n", r.Day, r.Identity, r.Model, r.Tier,
				r.Requests, r.InputTokens, r.OutputTokens, r.CacheReadTokens, r.CacheWriteTokens, r.ServerToolUses, r.CostUSD)
		}
		_ = tw.Flush()
	}
	return 0
}
