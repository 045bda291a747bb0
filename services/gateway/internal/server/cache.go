package server

import (
	"time"

	"github.com/keyward/keyward/services/gateway/internal/anscache"
)

// maxCacheWait bounds how long identical catalog queries wait for the one
// call that fills the shared answer cache before each makes its own.
const maxCacheWait = 2 * time.Minute

// answerCache is the shared answer cache: in Redis when the limiter uses
// Redis (so every replica coalesces), else in process.
func (s *Server) answerCache() anscache.Cache {
	if s.redis == nil {
		return anscache.NewMemory(nil)
	}
	// The lock outlives the longest call a filler can make, so it is
	// never released under a live filler; a crashed replica's lock expires.
	lockTTL := s.cfg.RequestTimeout + 5*time.Second
	return anscache.NewRedis(s.redis, "keyward:cache:", lockTTL, min(maxCacheWait, s.cfg.RequestTimeout))
}
