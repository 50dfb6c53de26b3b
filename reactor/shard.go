package reactor

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Clock is the source of time of a Shard. Tests inject a fake; production uses
// the real clock. The shard sleeps with runtime timers for next-deadline minus
// Now, so a fake clock that jumps ahead is observed at the next wake-up (any
// Post wakes the loop).
type Clock interface {
	// Now returns the current time.
	Now() time.Time
}

// RealClock is the Clock backed by time.Now.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Default sizes used when a ShardConfig field is zero.
const (
	DefaultQueueLen   = 1024
	DefaultTick       = time.Millisecond
	DefaultWheelSlots = 1024
	// maxBatch bounds how many posted functions run before timers are
	// checked again, so a busy queue cannot starve timers.
	maxBatch = 256
)

// ShardConfig configures a Shard. Zero values select the defaults.
type ShardConfig struct {
	// Index identifies the shard in logs and in Reactor callbacks.
	Index int
	// Clock supplies time; nil means RealClock.
	Clock Clock
	// OnTimer is called on the shard goroutine for every due timer, with the
	// time at which the wheel was advanced. nil ignores timers.
	OnTimer func(now time.Time, id uint64)
	// QueueLen bounds the number of posted but not yet run functions
	// (default DefaultQueueLen).
	QueueLen int
	// Tick and WheelSlots size the timing wheel (defaults DefaultTick and
	// DefaultWheelSlots). They affect only performance, not when timers fire.
	Tick       time.Duration
	WheelSlots int
	// Logger receives the shard's logs; nil discards them.
	Logger *slog.Logger
}

// Shard is one goroutine that owns state: it runs posted functions in the
// order they were posted and fires its timers. Post may be called from any
// goroutine; Schedule and Cancel only from the shard goroutine itself, that is
// from posted functions and OnTimer.
type Shard struct {
	index   int
	clock   Clock
	onTimer func(now time.Time, id uint64)
	log     *slog.Logger
	queue   chan func(now time.Time)
	wheel   *Wheel
	done    chan struct{} // closed when Run returns
	started atomic.Bool
	fireNow time.Time // now of the Advance in progress
	fire    func(id uint64)
}

// NewShard returns a shard that does nothing until Run is called. Posts made
// before Run are queued (and block once the queue is full).
func NewShard(cfg ShardConfig) *Shard {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.WheelSlots <= 0 {
		cfg.WheelSlots = DefaultWheelSlots
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Shard{
		index:   cfg.Index,
		clock:   cfg.Clock,
		onTimer: cfg.OnTimer,
		log:     cfg.Logger.With("shard", cfg.Index),
		queue:   make(chan func(time.Time), cfg.QueueLen),
		wheel:   NewWheel(cfg.Tick, cfg.WheelSlots, cfg.Clock.Now()),
		done:    make(chan struct{}),
	}
	s.fire = s.fireTimer
	return s
}

// Index returns the shard's index.
func (s *Shard) Index() int { return s.index }

// Post enqueues fn to run on the shard goroutine with the time at which it
// runs. Functions run in the order posted. The queue is bounded
// (ShardConfig.QueueLen): when it is full, Post blocks until the shard catches
// up, which pushes back on the posting reader instead of buffering without
// limit. Post must therefore not be called from the shard's own goroutine
// (it could deadlock on a full queue); use TryPost there, or just call the
// function. After the shard has stopped, fn is dropped.
func (s *Shard) Post(fn func(now time.Time)) {
	select {
	case s.queue <- fn:
	case <-s.done:
	}
}

// TryPost is Post without blocking: it reports false, dropping fn, if the
// queue is full or the shard has stopped. Readers that prefer dropping packets
// to stalling use it, and it is safe from the shard goroutine.
func (s *Shard) TryPost(fn func(now time.Time)) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.queue <- fn:
		return true
	default:
		return false
	}
}

// Schedule arms timer id to fire at or after at, replacing an earlier
// schedule of the same id. Shard goroutine only.
func (s *Shard) Schedule(id uint64, at time.Time) { s.wheel.Schedule(id, at) }

// Cancel disarms timer id. Shard goroutine only.
func (s *Shard) Cancel(id uint64) { s.wheel.Cancel(id) }

// Done returns a channel that is closed when the shard's Run has returned.
func (s *Shard) Done() <-chan struct{} { return s.done }

func (s *Shard) fireTimer(id uint64) {
	if s.onTimer != nil {
		s.onTimer(s.fireNow, id)
	}
}

// Run is the shard loop. It returns when ctx is done; functions still queued
// then are dropped. Only the first call runs the loop (Reactor.Run makes it);
// later calls return at once.
func (s *Shard) Run(ctx context.Context) {
	if s.started.Swap(true) {
		return
	}
	defer close(s.done)
	s.log.Debug("shard started")
	defer s.log.Debug("shard stopped")

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	for {
		s.advance()
		var timerC <-chan time.Time
		if next, ok := s.wheel.Next(); ok {
			d := next.Sub(s.clock.Now())
			if d <= 0 {
				// Already due again (a callback re-armed in the past): serve
				// the queue without blocking, then loop to fire.
				select {
				case <-ctx.Done():
					return
				case fn := <-s.queue:
					s.runBatch(fn)
				default:
				}
				continue
			}
			timer.Reset(d)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case fn := <-s.queue:
			s.runBatch(fn)
		case <-timerC:
		}
		timer.Stop()
	}
}

func (s *Shard) advance() {
	s.fireNow = s.clock.Now()
	s.wheel.Advance(s.fireNow, s.fire)
}

// runBatch runs fn and whatever else is queued, up to maxBatch functions.
func (s *Shard) runBatch(fn func(time.Time)) {
	now := s.clock.Now()
	fn(now)
	for range maxBatch - 1 {
		select {
		case fn = <-s.queue:
			fn(s.clock.Now())
		default:
			return
		}
	}
}
