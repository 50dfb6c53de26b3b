package reactor

import (
	"slices"
	"time"
)

// nilIdx marks the absence of a node in the wheel's intrusive lists and index.
const nilIdx = -1

// Wheel is a hashed timing wheel: timers identified by a uint64 id are kept in
// slots of width tick, so scheduling and cancelling are O(1). The wheel does not
// run by itself: the owner calls Advance with the current time and sleeps until
// Next. A Wheel is not safe for concurrent use; it belongs to one goroutine
// (in weft, one Shard).
//
// Timers more than one revolution (tick*slots) ahead share slots with near
// timers and are skipped until their revolution comes round, so any deadline is
// handled correctly; they only cost a comparison per revolution.
//
// After warm-up (once the timer population and the index have reached their
// peak size) Schedule, Cancel, Advance and Next do not allocate.
type Wheel struct {
	tick  int64 // slot width in nanoseconds
	start time.Time
	cur   int64 // every timer in a tick < cur has fired

	slots []int32 // head node of each slot's list
	nodes []node
	free  int32 // head of the free list (linked by next)
	live  int

	index []int32 // open-addressing id → node index (linear probing)
	shift uint    // 64 - log2(len(index))

	due []dueTimer // scratch for Advance

	nextRel   int64 // cached earliest deadline (relative), valid if nextValid
	nextValid bool
}

type node struct {
	id         uint64
	rel        int64 // deadline in ns since start
	tick       int64 // rel / tick, clamped to the tick that was current at Schedule
	gen        uint32
	prev, next int32
}

type dueTimer struct {
	rel int64
	id  uint64
	idx int32
	gen uint32
}

// NewWheel returns a wheel with the given slot width and number of slots whose
// time origin is start. Deadlines are bucketed by tick but compared exactly, so
// tick only trades slot scanning against list length; it never delays or
// advances a timer. Non-positive arguments are replaced by 1ms and 512.
func NewWheel(tick time.Duration, slots int, start time.Time) *Wheel {
	if tick <= 0 {
		tick = time.Millisecond
	}
	if slots <= 0 {
		slots = 512
	}
	w := &Wheel{tick: int64(tick), start: start, slots: make([]int32, slots), free: nilIdx}
	for i := range w.slots {
		w.slots[i] = nilIdx
	}
	w.initIndex(64)
	return w
}

// Len returns the number of pending timers.
func (w *Wheel) Len() int { return w.live }

// Schedule arms timer id to fire at the first Advance whose now is not before
// at. It replaces any earlier schedule of the same id. A deadline in the past
// fires on the next Advance. Scheduling from inside an Advance callback is
// allowed; such timers fire on a later Advance, never the current one.
func (w *Wheel) Schedule(id uint64, at time.Time) {
	rel := int64(at.Sub(w.start))
	if i := w.lookup(id); i != nilIdx {
		n := &w.nodes[i]
		w.unlink(i)
		if w.nextValid && n.rel == w.nextRel {
			w.nextValid = false
		}
		// A new generation makes Advance skip a stale entry in its due list.
		n.gen++
		n.rel = rel
		w.link(i)
	} else {
		i = w.alloc()
		n := &w.nodes[i]
		n.id, n.rel = id, rel
		w.link(i)
		w.insertIndex(id, i)
		w.live++
	}
	if w.nextValid && rel < w.nextRel {
		w.nextRel = rel
	}
}

// Cancel disarms timer id. Cancelling an unknown or already fired id is a no-op.
func (w *Wheel) Cancel(id uint64) {
	i := w.lookup(id)
	if i == nilIdx {
		return
	}
	w.remove(i)
}

// Advance fires, in deadline order (ties by id), every timer whose deadline is
// not after now, removing each before calling fire. fire may Schedule and
// Cancel; a timer cancelled or rescheduled by an earlier callback of the same
// Advance is not fired. A now earlier than a previous one fires nothing early.
func (w *Wheel) Advance(now time.Time, fire func(id uint64)) {
	nowRel := int64(now.Sub(w.start))
	nowTick := w.tickOf(nowRel)
	if nowTick < w.cur {
		nowTick = w.cur
	}
	// Scan each slot that may hold a due timer once; more than one revolution
	// of ticks means every slot.
	span := nowTick - w.cur + 1
	if span > int64(len(w.slots)) {
		span = int64(len(w.slots))
	}
	w.due = w.due[:0]
	for t := w.cur; t < w.cur+span; t++ {
		for i := w.slots[t%int64(len(w.slots))]; i != nilIdx; i = w.nodes[i].next {
			n := &w.nodes[i]
			if n.tick <= nowTick && n.rel <= nowRel {
				w.due = append(w.due, dueTimer{rel: n.rel, id: n.id, idx: i, gen: n.gen})
			}
		}
	}
	w.cur = nowTick
	if len(w.due) == 0 {
		return
	}
	slices.SortFunc(w.due, cmpDue)
	for k := range w.due {
		d := w.due[k]
		n := &w.nodes[d.idx]
		if n.gen != d.gen || n.id != d.id || !w.isLive(d.idx) {
			continue // cancelled or rescheduled by an earlier callback
		}
		w.remove(d.idx)
		fire(d.id)
	}
	w.due = w.due[:0]
}

func cmpDue(a, b dueTimer) int {
	switch {
	case a.rel < b.rel:
		return -1
	case a.rel > b.rel:
		return 1
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

// Next returns the earliest pending deadline, or false if no timer is armed.
// It is exact (not rounded to a tick), so a caller can sleep until it and then
// Advance. It is O(1) while the cached minimum stays valid, and otherwise scans
// at most one revolution of slots.
func (w *Wheel) Next() (time.Time, bool) {
	if w.live == 0 {
		return time.Time{}, false
	}
	if !w.nextValid {
		w.nextRel = w.scanMin()
		w.nextValid = true
	}
	return w.start.Add(time.Duration(w.nextRel)), true
}

// scanMin finds the earliest deadline. Slots are visited in tick order; the
// first slot holding a timer of the current revolution contains the minimum of
// that revolution, and later revolutions are only needed if it is empty.
func (w *Wheel) scanMin() int64 {
	best, found := int64(0), false
	far, farFound := int64(0), false
	nslots := int64(len(w.slots))
	for t := w.cur; t < w.cur+nslots && !found; t++ {
		for i := w.slots[t%nslots]; i != nilIdx; i = w.nodes[i].next {
			n := &w.nodes[i]
			if n.tick <= t {
				if !found || n.rel < best {
					best, found = n.rel, true
				}
			} else if !farFound || n.rel < far {
				far, farFound = n.rel, true
			}
		}
	}
	if found {
		return best
	}
	return far
}

func (w *Wheel) tickOf(rel int64) int64 {
	if rel < 0 {
		return 0
	}
	return rel / w.tick
}

func (w *Wheel) isLive(i int32) bool { return w.nodes[i].prev != -2 }

func (w *Wheel) alloc() int32 {
	if w.free != nilIdx {
		i := w.free
		w.free = w.nodes[i].next
		return i
	}
	w.nodes = append(w.nodes, node{})
	return int32(len(w.nodes) - 1)
}

// remove unlinks node i, drops it from the index and frees it.
func (w *Wheel) remove(i int32) {
	n := &w.nodes[i]
	w.unlink(i)
	w.deleteIndex(n.id)
	if w.nextValid && n.rel == w.nextRel {
		w.nextValid = false
	}
	n.gen++
	n.prev = -2 // marks a free node
	n.next = w.free
	w.free = i
	w.live--
}

// link puts node i into the slot of its deadline. Deadlines in ticks that are
// already done go into the current tick so the next Advance sees them.
func (w *Wheel) link(i int32) {
	n := &w.nodes[i]
	n.tick = w.tickOf(n.rel)
	if n.tick < w.cur {
		n.tick = w.cur
	}
	s := n.tick % int64(len(w.slots))
	n.prev = nilIdx
	n.next = w.slots[s]
	if n.next != nilIdx {
		w.nodes[n.next].prev = i
	}
	w.slots[s] = i
}

func (w *Wheel) unlink(i int32) {
	n := &w.nodes[i]
	if n.prev != nilIdx {
		w.nodes[n.prev].next = n.next
	} else {
		w.slots[n.tick%int64(len(w.slots))] = n.next
	}
	if n.next != nilIdx {
		w.nodes[n.next].prev = n.prev
	}
	n.prev, n.next = nilIdx, nilIdx
}

// The id index is an open-addressing table with linear probing and
// backward-shift deletion, so it never accumulates tombstones and never
// allocates except when it grows (load factor above 1/2).

func (w *Wheel) initIndex(size int) {
	w.index = make([]int32, size)
	for i := range w.index {
		w.index[i] = nilIdx
	}
	w.shift = 64
	for s := size; s > 1; s >>= 1 {
		w.shift--
	}
}

func (w *Wheel) home(id uint64) int {
	return int((id * 0x9E3779B97F4A7C15) >> w.shift)
}

func (w *Wheel) lookup(id uint64) int32 {
	mask := len(w.index) - 1
	for p := w.home(id); ; p = (p + 1) & mask {
		i := w.index[p]
		if i == nilIdx {
			return nilIdx
		}
		if w.nodes[i].id == id {
			return i
		}
	}
}

func (w *Wheel) insertIndex(id uint64, i int32) {
	if (w.live+1)*2 > len(w.index) {
		old := w.index
		w.initIndex(len(old) * 2)
		for _, j := range old {
			if j != nilIdx {
				w.place(w.nodes[j].id, j)
			}
		}
	}
	w.place(id, i)
}

func (w *Wheel) place(id uint64, i int32) {
	mask := len(w.index) - 1
	p := w.home(id)
	for w.index[p] != nilIdx {
		p = (p + 1) & mask
	}
	w.index[p] = i
}

func (w *Wheel) deleteIndex(id uint64) {
	mask := len(w.index) - 1
	p := w.home(id)
	for w.nodes[w.index[p]].id != id {
		p = (p + 1) & mask
	}
	// Backward shift: move later members of the probe run into the hole when
	// the hole lies between their home and their current position.
	for q := (p + 1) & mask; ; q = (q + 1) & mask {
		j := w.index[q]
		if j == nilIdx {
			break
		}
		h := w.home(w.nodes[j].id)
		if (q > p && (h <= p || h > q)) || (q < p && h <= p && h > q) {
			w.index[p] = j
			p = q
		}
	}
	w.index[p] = nilIdx
}
