// Package replay implements OpenVPN's packet-id replay window (§5.5, §10.3),
// used both for the 8-byte replay-ids of tls-auth/tls-crypt control packets
// (id and time) and for the data-channel data-pid (time always 0).
//
// The rules follow OpenVPN's packet_id_test/packet_id_add/packet_id_reap:
//
//   - id 0 is always rejected;
//   - a packet with a higher time than any accepted so far is accepted and
//     restarts the window at its id;
//   - a packet with a lower time is rejected;
//   - with equal time, an id above the highest accepted is accepted; an id
//     at most size-1 below the highest is accepted once (reordering); older
//     ids are rejected;
//   - a reordered id is rejected once its slot has expired: a slot expires
//     when any packet with a higher id (that is, one that overtook it) was
//     accepted more than expire ago. This is what OpenVPN's periodic reaper
//     ends up doing; here it is evaluated exactly at Accept time.
//
// The first accepted packet may carry any non-zero id and any time, so a
// peer may start its counter anywhere.
//
// A Window is not safe for concurrent use. Accept never allocates.
package replay

import "time"

// Defaults used by OpenVPN (`replay-window 64 15`).
const (
	DefaultSize   = 64
	DefaultExpire = 15 * time.Second
	// MaxSize bounds the window size (OpenVPN's maximum replay-window).
	MaxSize = 65536
)

// slot records whether an id was seen and when (local clock, Unix nanoseconds).
type slot struct {
	seen bool
	at   int64
}

// Window is an OpenVPN packet-id replay window. Create it with New; the zero
// value is not usable.
type Window struct {
	size   int
	expire time.Duration
	init   bool   // something has been accepted
	time   uint32 // time of the current window
	high   uint32 // highest accepted id in the current window
	slots  []slot // ring indexed by id % size
}

// New returns a window accepting ids up to size-1 below the highest, whose
// reordered slots expire expire after a newer packet arrived. size <= 0 means
// DefaultSize and is capped at MaxSize; expire <= 0 disables expiry.
func New(size int, expire time.Duration) *Window {
	if size <= 0 {
		size = DefaultSize
	}
	if size > MaxSize {
		size = MaxSize
	}
	return &Window{size: size, expire: expire, slots: make([]slot, size)}
}

// Size returns the window size.
func (w *Window) Size() int { return w.size }

// Accept reports whether the packet with the given id and time (ts) is new
// and, if so, records it. It returns false for id 0, replays, ids too old
// for the window, expired reordered ids and times older than the current
// one. now is the local clock (only used for slot expiry).
func (w *Window) Accept(now time.Time, id, ts uint32) bool {
	if id == 0 || w == nil || len(w.slots) == 0 {
		return false
	}
	at := now.UnixNano()
	if !w.init || ts > w.time {
		w.init = true
		w.time = ts
		w.high = id
		clear(w.slots)
		w.set(id, at)
		return true
	}
	if ts < w.time {
		return false
	}
	if id > w.high {
		gap := id - w.high
		if gap >= uint32(w.size) {
			clear(w.slots)
		} else {
			for x := w.high + 1; x != id; x++ {
				w.slots[x%uint32(w.size)] = slot{}
			}
		}
		w.high = id
		w.set(id, at)
		return true
	}
	d := w.high - id
	if d >= uint32(w.size) {
		return false
	}
	s := &w.slots[id%uint32(w.size)]
	if s.seen {
		return false
	}
	if w.expire > 0 {
		// Any newer packet accepted more than expire ago expires this slot.
		limit := at - int64(w.expire)
		for x := id + 1; ; x++ {
			n := w.slots[x%uint32(w.size)]
			if n.seen && n.at < limit {
				return false
			}
			if x == w.high {
				break
			}
		}
	}
	s.seen, s.at = true, at
	return true
}

func (w *Window) set(id uint32, at int64) {
	w.slots[id%uint32(w.size)] = slot{seen: true, at: at}
}

// Reset forgets everything accepted so far.
func (w *Window) Reset() {
	w.init, w.time, w.high = false, 0, 0
	clear(w.slots)
}
