package reactor

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// collect advances w to now and returns the fired ids in order.
func collect(w *Wheel, now time.Time) []uint64 {
	var got []uint64
	w.Advance(now, func(id uint64) { got = append(got, id) })
	return got
}

func TestWheelBasic(t *testing.T) {
	w := NewWheel(10*time.Millisecond, 8, t0)
	w.Schedule(1, at(25*time.Millisecond))
	w.Schedule(2, at(21*time.Millisecond))
	w.Schedule(3, at(29*time.Millisecond))
	w.Schedule(4, at(5*time.Millisecond))

	if next, ok := w.Next(); !ok || !next.Equal(at(5*time.Millisecond)) {
		t.Fatalf("Next = %v, %v; want 5ms", next, ok)
	}
	if got := collect(w, at(4*time.Millisecond)); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	if got := collect(w, at(5*time.Millisecond)); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("at 5ms fired %v, want [4]", got)
	}
	// Within one tick: deadline order, and nothing after now.
	if got := collect(w, at(25*time.Millisecond)); !slices.Equal(got, []uint64{2, 1}) {
		t.Fatalf("at 25ms fired %v, want [2 1]", got)
	}
	if next, _ := w.Next(); !next.Equal(at(29 * time.Millisecond)) {
		t.Fatalf("Next = %v, want 29ms", next)
	}
	if got := collect(w, at(time.Second)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("fired %v, want [3]", got)
	}
	if _, ok := w.Next(); ok || w.Len() != 0 {
		t.Fatalf("wheel not empty: Len=%d", w.Len())
	}
}

func TestWheelReplaceAndCancel(t *testing.T) {
	w := NewWheel(time.Millisecond, 16, t0)
	w.Schedule(7, at(3*time.Millisecond))
	w.Schedule(7, at(40*time.Millisecond)) // replaces, lands in another revolution
	w.Schedule(8, at(3*time.Millisecond))
	w.Cancel(8)
	w.Cancel(99) // unknown: no-op
	if got := collect(w, at(39*time.Millisecond)); len(got) != 0 {
		t.Fatalf("fired %v, want none", got)
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d, want 1", w.Len())
	}
	if got := collect(w, at(40*time.Millisecond)); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("fired %v, want [7]", got)
	}
}

func TestWheelFarFuture(t *testing.T) {
	// One revolution is 80ms; schedule many revolutions ahead.
	w := NewWheel(10*time.Millisecond, 8, t0)
	w.Schedule(1, at(time.Hour))
	w.Schedule(2, at(85*time.Millisecond)) // same slot as 5ms, next revolution
	w.Schedule(3, at(5*time.Millisecond))
	if next, _ := w.Next(); !next.Equal(at(5 * time.Millisecond)) {
		t.Fatalf("Next = %v", next)
	}
	for now := time.Duration(0); now < 84*time.Millisecond; now += time.Millisecond {
		for _, id := range collect(w, at(now)) {
			if id != 3 {
				t.Fatalf("timer %d fired at %v", id, now)
			}
		}
	}
	if next, _ := w.Next(); !next.Equal(at(85 * time.Millisecond)) {
		t.Fatalf("Next = %v, want 85ms", next)
	}
	if got := collect(w, at(85*time.Millisecond)); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("fired %v, want [2]", got)
	}
	if next, _ := w.Next(); !next.Equal(at(time.Hour)) {
		t.Fatalf("Next = %v, want 1h", next)
	}
	// A big jump fires it exactly once.
	if got := collect(w, at(time.Hour-time.Nanosecond)); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	if got := collect(w, at(2*time.Hour)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("fired %v, want [1]", got)
	}
}

func TestWheelPastAndBackwards(t *testing.T) {
	w := NewWheel(time.Millisecond, 4, t0)
	collect(w, at(100*time.Millisecond))
	w.Schedule(1, at(-time.Second)) // before start
	w.Schedule(2, at(50*time.Millisecond))
	if got := collect(w, at(90*time.Millisecond)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("fired %v, want [1 2]", got)
	}
	w.Schedule(3, at(101*time.Millisecond))
	if got := collect(w, at(95*time.Millisecond)); len(got) != 0 {
		t.Fatalf("clock went back, fired %v", got)
	}
	if got := collect(w, at(101*time.Millisecond)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("fired %v, want [3]", got)
	}
}

func TestWheelCallbackReentry(t *testing.T) {
	w := NewWheel(time.Millisecond, 8, t0)
	w.Schedule(1, at(1*time.Millisecond))
	w.Schedule(2, at(2*time.Millisecond))
	w.Schedule(3, at(3*time.Millisecond))
	var got []uint64
	w.Advance(at(10*time.Millisecond), func(id uint64) {
		got = append(got, id)
		if id == 1 {
			w.Cancel(2)                            // due, not yet fired: must not fire
			w.Schedule(3, at(20*time.Millisecond)) // rescheduled later: must not fire now
			w.Schedule(4, at(5*time.Millisecond))  // due, but added during Advance: next Advance
		}
	})
	if !slices.Equal(got, []uint64{1}) {
		t.Fatalf("fired %v, want [1]", got)
	}
	if got := collect(w, at(10*time.Millisecond)); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("second Advance fired %v, want [4]", got)
	}
	if got := collect(w, at(20*time.Millisecond)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("fired %v, want [3]", got)
	}
}

// model is the obviously correct reference: a map of deadlines.
type model map[uint64]time.Time

func (m model) advance(now time.Time) []uint64 {
	var ids []uint64
	for id, d := range m {
		if !d.After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b uint64) int {
		if c := m[a].Compare(m[b]); c != 0 {
			return c
		}
		if a < b {
			return -1
		}
		return 1
	})
	for _, id := range ids {
		delete(m, id)
	}
	return ids
}

func (m model) next() (time.Time, bool) {
	var best time.Time
	ok := false
	for _, d := range m {
		if !ok || d.Before(best) {
			best, ok = d, true
		}
	}
	return best, ok
}

func TestWheelRandomAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*7))
		w := NewWheel(time.Duration(1+rng.IntN(5))*time.Millisecond, 1+rng.IntN(64), t0)
		m := model{}
		now := t0
		for step := range 5000 {
			switch op := rng.IntN(10); {
			case op < 5:
				id := uint64(rng.IntN(300))
				var d time.Duration
				switch rng.IntN(4) {
				case 0: // far future, several revolutions
					d = time.Duration(rng.Int64N(int64(10 * time.Second)))
				case 1: // in the past
					d = -time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
				default:
					d = time.Duration(rng.Int64N(int64(200 * time.Millisecond)))
				}
				w.Schedule(id, now.Add(d))
				m[id] = now.Add(d)
			case op < 6:
				id := uint64(rng.IntN(300))
				w.Cancel(id)
				delete(m, id)
			default:
				var step time.Duration
				if rng.IntN(20) == 0 {
					step = time.Duration(rng.Int64N(int64(5 * time.Second)))
				} else {
					step = time.Duration(rng.Int64N(int64(20 * time.Millisecond)))
				}
				now = now.Add(step)
				got := collect(w, now)
				want := m.advance(now)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: Advance(%v) fired %v, want %v", seed, step, now.Sub(t0), got, want)
				}
			}
			gn, gok := w.Next()
			wn, wok := m.next()
			if gok != wok || !gn.Equal(wn) {
				t.Fatalf("seed %d step %d: Next = %v %v, want %v %v", seed, step, gn.Sub(t0), gok, wn.Sub(t0), wok)
			}
			if w.Len() != len(m) {
				t.Fatalf("seed %d step %d: Len = %d, want %d", seed, step, w.Len(), len(m))
			}
		}
	}
}

func TestWheelZeroAllocs(t *testing.T) {
	w := NewWheel(time.Millisecond, 256, t0)
	now := t0
	fire := func(uint64) {}
	round := func() {
		for id := uint64(0); id < 1000; id++ {
			w.Schedule(id, now.Add(time.Duration(id%300)*time.Millisecond))
		}
		for id := uint64(0); id < 1000; id += 3 {
			w.Cancel(id)
		}
		now = now.Add(150 * time.Millisecond)
		w.Advance(now, fire)
		w.Next()
		now = now.Add(time.Second)
		w.Advance(now, fire)
	}
	for range 3 {
		round() // warm up: node pool, index and scratch reach their peak
	}
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Fatalf("steady state allocates %.1f times per round", allocs)
	}
}

func BenchmarkWheelScheduleAdvance(b *testing.B) {
	w := NewWheel(time.Millisecond, 1024, t0)
	now := t0
	fire := func(uint64) {}
	b.ReportAllocs()
	for i := range b.N {
		id := uint64(i % 10000)
		w.Schedule(id, now.Add(time.Duration(id)*time.Millisecond))
		if i%100 == 0 {
			now = now.Add(time.Millisecond)
			w.Advance(now, fire)
		}
	}
}
