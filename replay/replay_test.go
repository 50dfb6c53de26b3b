package replay

import (
	"testing"
	"time"
)

type step struct {
	at   time.Duration // offset from t0
	id   uint32
	ts   uint32
	want bool
}

var t0 = time.Unix(1_700_000_000, 0)

func run(t *testing.T, name string, w *Window, steps []step) {
	t.Helper()
	for i, s := range steps {
		if got := w.Accept(t0.Add(s.at), s.id, s.ts); got != s.want {
			t.Errorf("%s step %d: Accept(+%v, %d, %d) = %v, want %v", name, i, s.at, s.id, s.ts, got, s.want)
		}
	}
}

func TestAccept(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		expire time.Duration
		steps  []step
	}{
		{"zero rejected first", 64, 15 * time.Second, []step{{0, 0, 0, false}, {0, 1, 0, true}, {0, 0, 0, false}}},
		{"in order", 64, 15 * time.Second, []step{{0, 1, 0, true}, {0, 2, 0, true}, {0, 3, 0, true}}},
		{"duplicate", 64, 15 * time.Second, []step{{0, 1, 0, true}, {0, 1, 0, false}, {0, 2, 0, true}, {0, 2, 0, false}, {0, 1, 0, false}}},
		{"any start", 64, 15 * time.Second, []step{{0, 0x0f000001, 5, true}, {0, 0x0f000002, 5, true}}},
		{"start at 2", 64, 15 * time.Second, []step{{0, 2, 5, true}, {0, 1, 5, true}, {0, 1, 5, false}}},
		{"reorder within window", 64, 15 * time.Second, []step{
			{0, 10, 0, true}, {0, 5, 0, true}, {0, 7, 0, true}, {0, 5, 0, false}, {0, 9, 0, true}, {0, 11, 0, true}, {0, 8, 0, true},
		}},
		{"window edge", 64, 15 * time.Second, []step{
			{0, 100, 0, true}, {0, 37, 0, true}, {0, 36, 0, false}, {0, 36, 0, false},
		}},
		{"large jump clears", 64, 15 * time.Second, []step{
			{0, 1, 0, true}, {0, 1000, 0, true}, {0, 999, 0, true}, {0, 1, 0, false}, {0, 937, 0, true}, {0, 936, 0, false},
		}},
		{"jump within window keeps old", 8, 0, []step{
			{0, 1, 0, true}, {0, 3, 0, true}, {0, 8, 0, true}, {0, 3, 0, false}, {0, 2, 0, true}, {0, 1, 0, false}, {0, 9, 0, true}, {0, 1, 0, false}, {0, 4, 0, true},
		}},
		{"higher time restarts", 64, 15 * time.Second, []step{
			{0, 100, 1, true}, {0, 1, 2, true}, {0, 100, 2, true}, {0, 1, 2, false}, {0, 50, 2, true}, {0, 200, 1, false}, {0, 101, 2, true},
		}},
		{"lower time rejected", 64, 15 * time.Second, []step{
			{0, 5, 10, true}, {0, 6, 9, false}, {0, 6, 10, true},
		}},
		{"expire", 64, 15 * time.Second, []step{
			{0, 1, 0, true},
			{0, 5, 0, true}, // 2,3,4 missing
			{10 * time.Second, 2, 0, true},
			{16 * time.Second, 3, 0, false}, // 5 arrived 16 s ago: expired
			{16 * time.Second, 4, 0, false},
			{16 * time.Second, 6, 0, true},
		}},
		{"expire only after newer", 64, 15 * time.Second, []step{
			{0, 1, 0, true},
			{20 * time.Second, 3, 0, true},
			{21 * time.Second, 2, 0, true}, // 3 arrived 1 s ago
		}},
		{"no expiry", 64, 0, []step{
			{0, 1, 0, true}, {0, 5, 0, true}, {time.Hour, 3, 0, true},
		}},
	}
	for _, tt := range tests {
		run(t, tt.name, New(tt.size, tt.expire), tt.steps)
	}
}

func TestRingReuseCorrect(t *testing.T) {
	w := New(4, 0)
	// 1,2 seen; jump to 5 clears slots of 3,4 (ids 3,4 share slots with 7,8).
	run(t, "ring", w, []step{{0, 1, 0, true}, {0, 2, 0, true}, {0, 5, 0, true}, {0, 2, 0, false}, {0, 3, 0, true}, {0, 4, 0, true}, {0, 1, 0, false}})
}

func TestDefaultsAndReset(t *testing.T) {
	w := New(0, 0)
	if w.Size() != DefaultSize {
		t.Errorf("New(0, 0).Size() = %d, want %d", w.Size(), DefaultSize)
	}
	if got := New(1<<30, 0).Size(); got != MaxSize {
		t.Errorf("New(1<<30, 0).Size() = %d, want %d", got, MaxSize)
	}
	w.Accept(t0, 5, 7)
	w.Reset()
	if !w.Accept(t0, 1, 0) {
		t.Errorf("Accept after Reset = false, want true")
	}
	var nilw *Window
	if nilw.Accept(t0, 1, 0) {
		t.Errorf("nil Window Accept = true, want false")
	}
	var zero Window
	if zero.Accept(t0, 1, 0) {
		t.Errorf("zero Window Accept = true, want false")
	}
}

// TestModel compares against a brute-force model without expiry.
func TestModel(t *testing.T) {
	const size = 16
	w := New(size, 0)
	seen := map[uint32]bool{}
	high := uint32(0)
	x := uint32(12345)
	for i := 0; i < 20000; i++ {
		x = x*1103515245 + 12345
		id := high + 1 + (x>>8)%8 - (x>>12)%24
		if int64(high)+1+int64((x>>8)%8)-int64((x>>12)%24) < 0 {
			id = 0
		}
		want := id != 0 && !seen[id] && (id > high || high-id < size)
		got := w.Accept(t0, id, 0)
		if got != want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v (high %d)", i, id, got, want, high)
		}
		if got {
			seen[id] = true
			if id > high {
				high = id
			}
		}
	}
}

func TestAcceptAllocs(t *testing.T) {
	w := New(64, 15*time.Second)
	id := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		id += 2
		w.Accept(t0, id, 0)
		w.Accept(t0, id-1, 0)
		w.Accept(t0, id-1, 0)
	})
	if allocs != 0 {
		t.Errorf("Accept allocs = %v, want 0", allocs)
	}
}

func BenchmarkAcceptInOrder(b *testing.B) {
	w := New(64, 15*time.Second)
	for i := 0; i < b.N; i++ {
		w.Accept(t0, uint32(i+1), 0)
	}
}
