package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// Config configures a Reactor. Zero values select defaults.
type Config struct {
	// Shards is the number of shards (default runtime.NumCPU()).
	Shards int
	// Logger receives the reactor's logs; nil discards them.
	Logger *slog.Logger
	// Clock supplies time to every shard; nil means RealClock.
	Clock Clock
	// OnTimer is called on shard's goroutine when one of its timers is due.
	OnTimer func(shard int, now time.Time, id uint64)
	// QueueLen, Tick and WheelSlots are passed to every ShardConfig.
	QueueLen   int
	Tick       time.Duration
	WheelSlots int
}

// Reactor is a fixed set of shards plus the source goroutines that feed them.
// Create it with New, register sources with Go, and call Run.
type Reactor struct {
	log    *slog.Logger
	shards []*Shard

	mu      sync.Mutex
	ctx     context.Context // non-nil while running
	cancel  context.CancelCauseFunc
	pending []func(context.Context) error
	stopped bool // Run has returned
	sources sync.WaitGroup
	errs    []error
}

// New returns a reactor with cfg.Shards shards; nothing runs until Run.
func New(cfg Config) *Reactor {
	if cfg.Shards <= 0 {
		cfg.Shards = runtime.NumCPU()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reactor{log: cfg.Logger, shards: make([]*Shard, cfg.Shards)}
	for i := range r.shards {
		var onTimer func(time.Time, uint64)
		if cfg.OnTimer != nil {
			f := cfg.OnTimer
			onTimer = func(now time.Time, id uint64) { f(i, now, id) }
		}
		r.shards[i] = NewShard(ShardConfig{
			Index:      i,
			Clock:      cfg.Clock,
			OnTimer:    onTimer,
			QueueLen:   cfg.QueueLen,
			Tick:       cfg.Tick,
			WheelSlots: cfg.WheelSlots,
			Logger:     cfg.Logger,
		})
	}
	return r
}

// NumShards returns the number of shards.
func (r *Reactor) NumShards() int { return len(r.shards) }

// Shard returns shard i, 0 <= i < NumShards().
func (r *Reactor) Shard(i int) *Shard { return r.shards[i] }

// Go registers a source: fn runs on its own goroutine for the reactor's
// lifetime, starting when Run starts (or at once if Run is already running).
// fn must return soon after ctx is done; a blocking reader typically arranges
// that with context.AfterFunc(ctx, conn.Close). A non-nil error returned while
// ctx is still live is logged and stops the reactor; Run then returns it.
// Errors returned after ctx is done are treated as shutdown noise and dropped.
// Once Run is shutting down, Go does nothing.
func (r *Reactor) Go(fn func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if r.ctx == nil {
		r.pending = append(r.pending, fn)
		return
	}
	r.start(r.ctx, fn)
}

// start runs fn; r.mu must be held.
func (r *Reactor) start(ctx context.Context, fn func(context.Context) error) {
	r.sources.Add(1)
	go func() {
		defer r.sources.Done()
		err := fn(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		r.log.Error("reactor source failed", "err", err)
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		r.cancel(err)
	}()
}

// Run starts the shards and the registered sources and blocks until ctx is
// done or a source fails, then waits for all shards and sources to stop. It
// returns nil after a normal shutdown through ctx, and the sources' errors
// (joined) if a source failed. Run must be called only once.
func (r *Reactor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	r.mu.Lock()
	if r.ctx != nil {
		r.mu.Unlock()
		return errors.New("reactor: Run called twice")
	}
	r.ctx, r.cancel = ctx, cancel
	var shards sync.WaitGroup
	for _, s := range r.shards {
		shards.Go(func() { s.Run(ctx) })
	}
	for _, fn := range r.pending {
		r.start(ctx, fn)
	}
	r.pending = nil
	r.mu.Unlock()

	r.log.Debug("reactor running", "shards", len(r.shards))
	<-ctx.Done()
	r.mu.Lock()
	r.stopped = true // no new sources once shutdown has begun
	r.mu.Unlock()
	shards.Wait()
	r.sources.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		return fmt.Errorf("reactor: %w", errors.Join(r.errs...))
	}
	return nil
}
