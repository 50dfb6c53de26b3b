package reactor

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type firing struct {
	id uint64
	at time.Duration // virtual time since the test started
}

// TestShardTimersVirtualTime runs the real shard loop inside a synctest
// bubble: time.Now and the loop's timers are virtual, so the test checks that
// each timer fires exactly at its deadline without sleeping for real.
func TestShardTimersVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var got []firing
		var sh *Shard
		sh = NewShard(ShardConfig{OnTimer: func(now time.Time, id uint64) {
			mu.Lock()
			got = append(got, firing{id, now.Sub(start)})
			mu.Unlock()
			if id == 3 { // periodic: re-arm from the callback, three times
				if now.Sub(start) < 4*time.Second {
					sh.Schedule(3, now.Add(time.Second))
				}
			}
		}})
		ctx, cancel := context.WithCancel(t.Context())
		go sh.Run(ctx)

		sh.Post(func(now time.Time) {
			sh.Schedule(1, now.Add(1500*time.Millisecond))
			sh.Schedule(2, now.Add(500*time.Millisecond))
			sh.Schedule(3, now.Add(time.Second))
			sh.Schedule(4, now.Add(time.Hour))
			sh.Schedule(5, now.Add(2*time.Second))
		})
		time.Sleep(1200 * time.Millisecond)
		sh.Post(func(time.Time) { sh.Cancel(5) })
		time.Sleep(2 * time.Hour)
		cancel()
		<-sh.Done()

		want := []firing{
			{2, 500 * time.Millisecond},
			{3, time.Second},
			{1, 1500 * time.Millisecond},
			{3, 2 * time.Second},
			{3, 3 * time.Second},
			{3, 4 * time.Second},
			{4, time.Hour},
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("timers fired %v, want %v", got, want)
		}
	})
}

func TestShardPostOrderAndBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sh := NewShard(ShardConfig{QueueLen: 2})
		var got []int
		// Before Run the queue holds two functions; the third Post blocks.
		sh.Post(func(time.Time) { got = append(got, 0) })
		sh.Post(func(time.Time) { got = append(got, 1) })
		posted := make(chan struct{})
		go func() {
			sh.Post(func(time.Time) { got = append(got, 2) })
			close(posted)
		}()
		synctest.Wait()
		select {
		case <-posted:
			t.Fatal("Post did not block on a full queue")
		default:
		}
		if sh.TryPost(func(time.Time) {}) {
			t.Fatal("TryPost succeeded on a full queue")
		}
		ctx, cancel := context.WithCancel(t.Context())
		go sh.Run(ctx)
		<-posted
		for i := 3; i < 100; i++ {
			sh.Post(func(time.Time) { got = append(got, i) })
		}
		done := make(chan struct{})
		sh.Post(func(time.Time) { close(done) })
		<-done
		cancel()
		<-sh.Done()
		for i, v := range got {
			if v != i {
				t.Fatalf("posted functions ran out of order: %v", got)
			}
		}
		if len(got) != 100 {
			t.Fatalf("ran %d functions, want 100", len(got))
		}
		// After stop, Post returns instead of blocking and TryPost fails.
		sh.Post(func(time.Time) { t.Error("ran after stop") })
		if sh.TryPost(func(time.Time) {}) {
			t.Fatal("TryPost succeeded after stop")
		}
	})
}

// manualClock is a settable Clock for tests that do not use synctest.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestShardInjectedClock drives the loop with a manual clock: timers follow the
// injected time, not the wall clock, and a Post wakes the loop to re-check.
func TestShardInjectedClock(t *testing.T) {
	clk := &manualClock{now: t0}
	fired := make(chan firing, 10)
	sh := NewShard(ShardConfig{Clock: clk, OnTimer: func(now time.Time, id uint64) {
		fired <- firing{id, now.Sub(t0)}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-sh.Done() }()
	go sh.Run(ctx)

	sh.Post(func(now time.Time) {
		if !now.Equal(t0) {
			t.Errorf("posted fn got now %v, want injected %v", now, t0)
		}
		sh.Schedule(1, now.Add(time.Hour))
	})
	barrier := func() {
		done := make(chan struct{})
		sh.Post(func(time.Time) { close(done) })
		<-done
	}
	barrier()
	select {
	case f := <-fired:
		t.Fatalf("timer fired before the injected clock reached it: %v", f)
	default:
	}
	clk.set(t0.Add(time.Hour))
	barrier()
	barrier() // the loop advances the wheel before blocking again
	select {
	case f := <-fired:
		if f != (firing{1, time.Hour}) {
			t.Fatalf("fired %v, want id 1 at 1h", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire after the clock advanced")
	}
}

func TestReactorRunAndSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fired := make(chan [2]uint64, 4)
		r := New(Config{Shards: 3, OnTimer: func(shard int, now time.Time, id uint64) {
			fired <- [2]uint64{uint64(shard), id}
		}})
		if r.NumShards() != 3 {
			t.Fatalf("NumShards = %d", r.NumShards())
		}
		ctx, cancel := context.WithCancel(t.Context())
		sourceStopped := make(chan struct{})
		r.Go(func(ctx context.Context) error {
			// A source: posts "batches" to shard 2, which arms a timer.
			r.Shard(2).Post(func(now time.Time) { r.Shard(2).Schedule(42, now.Add(time.Second)) })
			<-ctx.Done()
			close(sourceStopped)
			return ctx.Err() // after ctx is done: not reported
		})
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx) }()
		time.Sleep(2 * time.Second)
		if got := <-fired; got != [2]uint64{2, 42} {
			t.Fatalf("OnTimer(%v), want shard 2 id 42", got)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		<-sourceStopped
	})
}

func TestReactorSourceErrorStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{Shards: 1})
		boom := errors.New("boom")
		r.Go(func(ctx context.Context) error {
			time.Sleep(time.Second)
			return boom
		})
		stopped := false
		r.Go(func(ctx context.Context) error { <-ctx.Done(); stopped = true; return nil })
		err := r.Run(t.Context())
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want boom", err)
		}
		if !stopped {
			t.Fatal("Run returned before the other source stopped")
		}
		select {
		case <-r.Shard(0).Done():
		default:
			t.Fatal("Run returned before the shard stopped")
		}
	})
}
