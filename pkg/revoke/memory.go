package revoke

import "context"

// Store wraps a Denylist with the same methods as Redis, for the in-process
// mode: revocations made through the admin API, on this replica only, lost
// on restart.
type Store struct{ *Denylist }

// Add implements the admin API's store.
func (s Store) Add(_ context.Context, e Entry) error { return s.Denylist.Add(e) }

// Remove implements the admin API's store.
func (s Store) Remove(_ context.Context, kind, value string) (bool, error) {
	return s.Denylist.Remove(kind, value), nil
}

// List implements the admin API's store.
func (s Store) List(context.Context) ([]Entry, error) { return s.Denylist.List(), nil }

// Backend names the store.
func (Store) Backend() string { return "memory" }
