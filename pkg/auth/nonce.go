package auth

import (
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// NonceStore remembers request nonces so that a signed request is accepted
// once. Claim reports fresh=true the first time a (keyID, nonce) pair is seen
// within ttl. A store that cannot answer returns an error wrapping
// ErrUnavailable: the verifier then fails closed.
type NonceStore interface {
	Claim(ctx context.Context, keyID, nonce string, ttl time.Duration) (fresh bool, err error)
}

const defaultNoncePrefix = "keyward:v1:"

// RedisNonceStore shares nonces between replicas through Redis, so a request
// accepted by one replica is a replay on every other.
type RedisNonceStore struct {
	c      redis.UniversalClient
	prefix string
}

var _ NonceStore = (*RedisNonceStore)(nil)

// NewRedisNonceStore stores nonces as prefix+"nonce:"+keyID+":"+nonce; prefix
// defaults to "keyward:v1:" (giving keyward:v1:nonce:{kid}:{nonce}).
func NewRedisNonceStore(c redis.UniversalClient, prefix string) *RedisNonceStore {
	if prefix == "" {
		prefix = defaultNoncePrefix
	}
	return &RedisNonceStore{c: c, prefix: prefix}
}

// Claim runs SET key 1 NX EX ttl: one atomic round trip decides the race
// between replicas that receive the same request at the same moment.
func (s *RedisNonceStore) Claim(ctx context.Context, keyID, nonce string, ttl time.Duration) (bool, error) {
	if s.c == nil {
		return false, fmt.Errorf("claiming nonce: %w: no redis client", ErrUnavailable)
	}
	ok, err := s.c.SetNX(ctx, s.prefix+"nonce:"+keyID+":"+nonce, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claiming nonce in redis: %w: %w", ErrUnavailable, err)
	}
	return ok, nil
}

// defaultMemoryNonceMax bounds the in-memory store (a few tens of MB at most).
// Only requests with a valid signature reach the store, so filling it takes
// a key holder sending about 170 signed requests per second for 10 minutes.
const defaultMemoryNonceMax = 100_000

// MemoryNonceStore is a bounded, expiring nonce store for a single replica
// without Redis. With several replicas it cannot see the others' nonces:
// use RedisNonceStore there.
type MemoryNonceStore struct {
	mu   sync.Mutex
	seen map[string]time.Time
	exp  expiryHeap
	max  int
	now  func() time.Time
}

var _ NonceStore = (*MemoryNonceStore)(nil)

// NewMemoryNonceStore returns an empty store holding at most 100,000 live
// nonces. When full it refuses new claims (ErrUnavailable) rather than
// forgetting live nonces, which would re-open them to replay.
func NewMemoryNonceStore() *MemoryNonceStore {
	return &MemoryNonceStore{seen: make(map[string]time.Time), max: defaultMemoryNonceMax, now: time.Now}
}

// Claim records (keyID, nonce) until now+ttl.
func (m *MemoryNonceStore) Claim(_ context.Context, keyID, nonce string, ttl time.Duration) (bool, error) {
	// Length-prefixed so that no (keyID, nonce) split can collide with another.
	key := strconv.Itoa(len(keyID)) + ":" + keyID + nonce
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.exp) > 0 && !m.exp[0].at.After(now) {
		e := heap.Pop(&m.exp).(expiry)
		if at, ok := m.seen[e.key]; ok && at.Equal(e.at) {
			delete(m.seen, e.key)
		}
	}
	if _, ok := m.seen[key]; ok {
		return false, nil
	}
	if len(m.seen) >= m.max {
		return false, fmt.Errorf("claiming nonce: %w: in-memory nonce store full", ErrUnavailable)
	}
	at := now.Add(ttl)
	m.seen[key] = at
	heap.Push(&m.exp, expiry{key: key, at: at})
	return true, nil
}

type expiry struct {
	key string
	at  time.Time
}

// expiryHeap is a min-heap on expiry time, so expired nonces are dropped in
// O(log n) each without scanning the whole map.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	*h = old[:n-1]
	return x
}
