package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batching defaults. Two pipelines in flight keep one slow round trip from
// holding everyone, yet let batches form as soon as three callers overlap;
// 128 commands bound a pipeline far above what a gateway's concurrency
// produces, so the cap only matters in a pile-up.
const (
	defaultBatchSenders = 2
	defaultBatchCmds    = 128
)

// batcher sends the limiter's script calls to Redis with natural batching
// (group commit): a call that finds a sending slot free goes out at once,
// on its own, exactly as it would without the batcher; calls that arrive
// while every slot is busy queue, and when a slot frees, the queue goes out
// as one pipeline — N waiting admissions cost one write and one read instead
// of N of each. Every caller still gets its own command and reply, so Redis
// sees the same EVALSHAs as without batching.
//
// There is no dispatcher goroutine: whoever frees a slot hands it, with the
// queued calls, to one of them, and that caller sends the pipeline and wakes
// the others. The sender chosen is the one with the latest deadline, and the
// pipeline runs under that deadline, so it holds no caller past its own
// deadline and cuts none short; each waiting caller also watches its own
// context and leaves when it is done, its reply then being ignored.
//
// batcher is the Scripter that redis_rate and Script.Run see.
type batcher struct {
	client  redis.UniversalClient
	senders int // pipelines (or lone commands) in flight at once
	maxCmds int // commands per pipeline; one call's commands are never split

	mu      sync.Mutex
	sending int     // slots taken
	queue   []*call // waiting for a slot, oldest first; may hold abandoned calls
}

func newBatcher(client redis.UniversalClient) *batcher {
	return &batcher{client: client, senders: defaultBatchSenders, maxCmds: defaultBatchCmds}
}

var _ redis.Scripter = (*batcher)(nil)

type callState uint8

const (
	callQueued    callState = iota // in b.queue
	callBatched                    // taken from the queue; its batch not sent yet or in flight
	callLeading                    // asked to send its batch
	callDone                       // cmds hold their replies (or the pipeline's error)
	callAbandoned                  // the caller left; nobody reads cmds any more
)

// call is one caller's commands waiting for a slot. Fields other than ready
// are guarded by batcher.mu until the call is signalled.
type call struct {
	cmds        []redis.Cmder
	ctx         context.Context
	deadline    time.Time
	hasDeadline bool
	ready       chan struct{} // signalled (once) on callLeading or callDone
	state       callState
	batch       []*call // callLeading: what to send, this call among them
}

// signal wakes c; the buffer keeps a signal for a caller not yet waiting.
func (c *call) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// do sends cmds and returns once they hold their replies or errors, or with
// ctx's error as soon as ctx is done while they wait; cmds must not be read
// then, as a pipeline may still be writing them.
func (b *batcher) do(ctx context.Context, cmds ...redis.Cmder) error {
	if b.take() {
		defer b.release()
		b.exec(ctx, cmds)
		return nil
	}
	return b.wait(ctx, cmds)
}

// doOne is do for one command, without allocating when it goes out alone.
func (b *batcher) doOne(ctx context.Context, cmd redis.Cmder) error {
	if b.take() {
		defer b.release()
		b.execOne(ctx, cmd)
		return nil
	}
	return b.wait(ctx, []redis.Cmder{cmd})
}

// take takes a free slot. The queue is empty whenever one is free, so
// whoever gets it sends at once, alone.
func (b *batcher) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sending < b.senders {
		b.sending++
		return true
	}
	return false
}

// wait queues cmds for the next free slot.
func (b *batcher) wait(ctx context.Context, cmds []redis.Cmder) error {
	c := &call{cmds: cmds, ctx: ctx, ready: make(chan struct{}, 1)}
	c.deadline, c.hasDeadline = ctx.Deadline()
	b.mu.Lock()
	if b.sending < b.senders {
		// A slot freed up meanwhile (the queue is then empty).
		b.sending++
		b.mu.Unlock()
		defer b.release()
		b.exec(ctx, cmds)
		return nil
	}
	b.queue = append(b.queue, c)
	b.mu.Unlock()

	select {
	case <-c.ready:
	case <-ctx.Done():
		if b.abandon(c) {
			return ctx.Err()
		}
		// Done in the meantime: the replies are there, use them.
	}
	if c.state == callLeading {
		b.lead(c)
	}
	return nil
}

// abandon takes c out of whatever it waits for, passing the sending on if
// it had just been asked to lead. It reports false when c is already done.
func (b *batcher) abandon(c *call) bool {
	b.mu.Lock()
	if c.state == callDone {
		b.mu.Unlock()
		return false
	}
	wasLeading := c.state == callLeading
	c.state = callAbandoned
	var next *call
	if wasLeading {
		next = b.handLocked(c.batch)
		c.batch = nil
	}
	b.mu.Unlock()
	if next != nil {
		next.signal()
	}
	return true
}

// lead sends l's batch as one pipeline, wakes its members and passes the
// slot on.
func (b *batcher) lead(l *call) {
	b.mu.Lock()
	members := l.batch
	l.batch = nil
	sent := members[:0]
	var cmds []redis.Cmder
	for _, m := range members {
		// A member whose context is done is about to leave: do not spend a
		// request of its identity on a reply nobody will read.
		if m.state == callAbandoned || (m != l && m.ctx.Err() != nil) {
			continue
		}
		sent = append(sent, m)
		cmds = append(cmds, m.cmds...)
	}
	b.mu.Unlock()

	sentOK := false
	defer func() {
		if !sentOK {
			// exec panicked (in a hook, say): the panic goes on up l's
			// stack, while everyone else gets an error rather than an empty
			// reply, and the slot is not lost.
			setErr(cmds, errBatchPanicked)
		}
		b.finish(l, sent)
	}()
	if len(sent) == 1 {
		b.exec(l.ctx, cmds)
	} else {
		// The pipeline serves everyone: l's values (tracing) and deadline,
		// but not its cancellation, which is l's alone.
		ctx := context.WithoutCancel(l.ctx)
		if l.hasDeadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, l.deadline)
			defer cancel()
		}
		b.exec(ctx, cmds)
	}
	sentOK = true
}

var errBatchPanicked = errors.New("sending redis scripts: the batch's sender panicked")

// finish marks the members of a sent batch done, wakes them and passes the
// slot on.
func (b *batcher) finish(l *call, sent []*call) {
	b.mu.Lock()
	for _, m := range sent {
		if m.state != callAbandoned {
			m.state = callDone
		}
	}
	next := b.nextLocked()
	b.mu.Unlock()
	for _, m := range sent {
		if m != l {
			m.signal()
		}
	}
	if next != nil {
		next.signal()
	}
}

// release frees the slot of a call sent alone, handing it to the queue.
func (b *batcher) release() {
	b.mu.Lock()
	next := b.nextLocked()
	b.mu.Unlock()
	if next != nil {
		next.signal()
	}
}

// nextLocked gives the slot just freed to the oldest waiting calls, as many
// as fit one pipeline, and returns the one that is to send them; with
// nobody waiting the slot is given back.
func (b *batcher) nextLocked() *call {
	var batch []*call
	n, i := 0, 0
	for ; i < len(b.queue); i++ {
		c := b.queue[i]
		if c.state == callAbandoned {
			continue
		}
		if len(batch) > 0 && n+len(c.cmds) > b.maxCmds {
			break
		}
		c.state = callBatched
		batch = append(batch, c)
		n += len(c.cmds)
	}
	rest := copy(b.queue, b.queue[i:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return b.handLocked(batch)
}

// handLocked makes the live call of batch with the latest deadline its
// sender (so the pipeline's deadline, the sender's, holds nobody past their
// own) and returns it; with none alive the slot goes to the queue instead.
func (b *batcher) handLocked(batch []*call) *call {
	var l *call
	for _, c := range batch {
		if c.state != callAbandoned && (l == nil || laterDeadline(c, l)) {
			l = c
		}
	}
	if l == nil {
		if len(batch) > 0 {
			// Everyone in it left before it was sent.
			return b.nextLocked()
		}
		b.sending--
		return nil
	}
	l.state, l.batch = callLeading, batch
	return l
}

// laterDeadline reports whether a must be answered later than b; no
// deadline is the latest of all.
func laterDeadline(a, b *call) bool {
	switch {
	case !b.hasDeadline:
		return false
	case !a.hasDeadline:
		return true
	}
	return a.deadline.After(b.deadline)
}

// exec runs cmds in one round trip. A failure that is not a Redis reply
// (network, pool, a hook) reaches every command, also when go-redis did
// not stamp it on them (a hook that fails the pipeline before sending it):
// every caller must see it rather than an empty reply.
func (b *batcher) exec(ctx context.Context, cmds []redis.Cmder) {
	if len(cmds) == 1 {
		b.execOne(ctx, cmds[0])
		return
	}
	pipe := b.client.Pipeline()
	_ = pipe.BatchProcess(ctx, cmds...)
	if _, err := pipe.Exec(ctx); err != nil && !isReply(err) {
		setErr(cmds, err)
	}
}

// setErr gives err to the commands that have no error of their own.
func setErr(cmds []redis.Cmder, err error) {
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			cmd.SetErr(err)
		}
	}
}

func (b *batcher) execOne(ctx context.Context, cmd redis.Cmder) {
	if err := b.client.Process(ctx, cmd); err != nil && cmd.Err() == nil {
		cmd.SetErr(err)
	}
}

// isReply reports whether err is Redis's answer to a command (NOSCRIPT,
// WRONGTYPE…), which go-redis keeps on that command alone.
func isReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}

// Eval, EvalSha, EvalRO and EvalShaRO are batched; the rest of Scripter
// (and redis_rate's Del) is rare and goes straight to the client.

func (b *batcher) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return b.eval(ctx, "eval", script, keys, args)
}

func (b *batcher) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return b.eval(ctx, "evalsha", sha1, keys, args)
}

func (b *batcher) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return b.eval(ctx, "eval_ro", script, keys, args)
}

func (b *batcher) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return b.eval(ctx, "evalsha_ro", sha1, keys, args)
}

func (b *batcher) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return b.client.ScriptExists(ctx, hashes...)
}

func (b *batcher) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return b.client.ScriptLoad(ctx, script)
}

func (b *batcher) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return b.client.Del(ctx, keys...)
}

// eval builds the command the way go-redis's Eval family does (key position
// for Cluster routing, NOSCRIPT normalized to ErrNoScript for Script.Run),
// except that a lone slice argument is not flattened: no caller passes one.
func (b *batcher) eval(ctx context.Context, name, payload string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	if err := b.doOne(ctx, cmd); err != nil {
		// cmd may still be written by a pipeline: answer with another.
		cmd = redis.NewCmd(ctx, a...)
		cmd.SetErr(err)
		return cmd
	}
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd.SetErr(redis.ErrNoScript)
	}
	return cmd
}
