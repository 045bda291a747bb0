// Package revoke keeps a denylist of JWTs: single tokens by their jti claim,
// or every token of a subject issued up to the moment it was revoked. The
// list is checked on every request after the signature, so the check reads a
// local copy (Denylist) and never Redis; Redis-backed replicas refresh that
// copy by polling a version key (Sync).
package revoke

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/keyward/keyward/pkg/auth"
)

// Kinds of revocation.
const (
	KindJTI     = "jti" // one token, by its jti claim
	KindSubject = "sub" // every token of a subject issued at or before RevokedAt
)

// ErrInvalid wraps every rejection of a malformed revocation.
var ErrInvalid = errors.New("invalid revocation")

// Entry is one revocation. It lapses at Until: for a jti, set it to the
// token's expiry (a token past exp is refused anyway); for a subject, to the
// expiry of the last token issued before the revocation.
type Entry struct {
	Kind      string    `json:"kind"`
	Value     string    `json:"value"`
	RevokedAt time.Time `json:"revoked_at"`
	Until     time.Time `json:"until"`
}

// Validate checks e's fields.
func (e Entry) Validate() error {
	switch {
	case e.Kind != KindJTI && e.Kind != KindSubject:
		return fmt.Errorf("%w: kind must be %q or %q", ErrInvalid, KindJTI, KindSubject)
	case e.Value == "" || len(e.Value) > 512:
		return fmt.Errorf("%w: value must be 1 to 512 bytes", ErrInvalid)
	case e.Until.IsZero() || !e.Until.After(e.RevokedAt):
		return fmt.Errorf("%w: until must be after the revocation time", ErrInvalid)
	}
	return nil
}

func (e Entry) field() string { return e.Kind + "|" + e.Value }

// Denylist is a replica's in-memory copy of the revocations. It is also the
// whole store of the in-process mode (no Redis).
type Denylist struct {
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]Entry // by field()
}

// NewDenylist returns an empty list; now defaults to time.Now.
func NewDenylist(now func() time.Time) *Denylist {
	if now == nil {
		now = time.Now
	}
	return &Denylist{now: now, entries: map[string]Entry{}}
}

// Revoked reports whether id's token is revoked now.
func (d *Denylist) Revoked(id auth.Identity) bool {
	t := d.now()
	d.mu.RLock()
	defer d.mu.RUnlock()
	if len(d.entries) == 0 {
		return false
	}
	if id.TokenID != "" {
		if e, ok := d.entries[KindJTI+"|"+id.TokenID]; ok && t.Before(e.Until) {
			return true
		}
	}
	if e, ok := d.entries[KindSubject+"|"+id.Subject]; ok && t.Before(e.Until) {
		// iat has whole seconds: a token issued in the revocation's second
		// is refused too. A token without iat cannot prove it is newer.
		return id.IssuedAt.IsZero() || !id.IssuedAt.After(e.RevokedAt)
	}
	return false
}

// Add records e (replacing an earlier revocation of the same token or subject).
func (d *Denylist) Add(e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries[e.field()] = e
	return nil
}

// Remove lifts a revocation; it reports whether there was one.
func (d *Denylist) Remove(kind, value string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := kind + "|" + value
	_, ok := d.entries[k]
	delete(d.entries, k)
	return ok
}

// List returns the revocations still in force, oldest first.
func (d *Denylist) List() []Entry {
	t := d.now()
	d.mu.RLock()
	out := make([]Entry, 0, len(d.entries))
	for _, e := range d.entries {
		if t.Before(e.Until) {
			out = append(out, e)
		}
	}
	d.mu.RUnlock()
	sortEntries(out)
	return out
}

// replace swaps the whole list (a sync from Redis).
func (d *Denylist) replace(entries map[string]Entry) {
	d.mu.Lock()
	d.entries = entries
	d.mu.Unlock()
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].RevokedAt.Equal(es[j].RevokedAt) {
			return es[i].RevokedAt.Before(es[j].RevokedAt)
		}
		return es[i].field() < es[j].field()
	})
}
