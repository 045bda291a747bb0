package server

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/revoke"
	"github.com/keyward/keyward/services/gateway/internal/admin"
	"github.com/keyward/keyward/services/gateway/internal/keyfile"
)

// adminParts is what the admin API and the revocation check share.
type adminParts struct {
	denylist *revoke.Denylist
	ledger   ledger.Ledger
	handler  *admin.Options
}

// buildAdmin builds the revocation list, the usage ledger and the admin
// API's options. With Redis both are shared by every replica (the list is
// copied locally and refreshed by polling); without, they live in memory on
// this replica.
func (s *Server) buildAdmin(bg context.Context, now func() time.Time) error {
	cfg := s.cfg
	s.admin.denylist = revoke.NewDenylist(now)
	var revs admin.Revocations
	if s.redis != nil {
		rr := revoke.NewRedis(s.redis, "", s.admin.denylist, s.log)
		ctx, cancel := context.WithTimeout(bg, 2*time.Second)
		if err := rr.Sync(ctx); err != nil {
			s.log.Warn("revocation list not loaded at start; retrying in the background", "error", err.Error())
		}
		cancel()
		go rr.Run(bg)
		revs = rr
		l, err := ledger.NewRedis(s.redis, "", cfg.Admin.LedgerRetentionDays)
		if err != nil {
			return err
		}
		s.admin.ledger = l
	} else {
		revs = revoke.Store{Denylist: s.admin.denylist}
		s.admin.ledger = ledger.NewMemory(cfg.Admin.LedgerRetentionDays, now)
	}
	if !cfg.Admin.Ledger {
		s.admin.ledger = nil
	}
	token := keyfile.Static("")
	if cfg.Admin.TokenFile != "" {
		token = keyfile.FromFileAs("admin token", cfg.Admin.TokenFile, 2*time.Second, s.log)
		go token.Watch(bg)
	}
	s.admin.handler = &admin.Options{
		Token: token.Key, Revocations: revs, Ledger: s.admin.ledger, Limiter: s.limiter,
		PolicyFor: cfg.PolicyFor, Now: now, Log: s.log,
	}
	return nil
}

// AdminHandler serves /admin/* (admin listener only).
func (s *Server) AdminHandler() http.Handler { return admin.Handler(*s.admin.handler) }
