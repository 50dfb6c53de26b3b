// Package reliable implements the OpenVPN control-channel reliability layer for one
// key state: message ids, a bounded send window with retransmission and exponential
// backoff, a bounded receive window with in-order delivery, and the ACK bookkeeping
// (piggybacked ACKs, duplicate re-ACKs, most-recently-used ACK refill).
//
// It is pure: callers pass the current time and move packets themselves.
package reliable

import (
	"time"
)

// Window sizes and limits used by OpenVPN 2.6.
const (
	// SendWindow is the number of un-ACKed packets allowed in flight.
	SendWindow = 6
	// RecvWindow is how far ahead of the next expected id a packet may be.
	RecvWindow = 12
	// MaxPiggyback is the most ACKs carried on a P_CONTROL packet.
	MaxPiggyback = 4
	// MaxAckPacket is the most ACKs carried on a P_ACK_V1 packet.
	MaxAckPacket = 8
	// fastRetransmitAcks is how many ACKs of later ids trigger an early resend.
	fastRetransmitAcks = 3
	mruSize            = 8
)

// Message is one reliable control message (a reset or a P_CONTROL payload chunk).
type Message struct {
	ID      uint32
	Opcode  uint8 // wire opcode; kept so retransmissions reuse it
	Payload []byte
}

type outMsg struct {
	Message
	sent       bool
	nextSend   time.Time
	timeout    time.Duration
	laterAcked int
}

// Sender tracks outgoing messages of one key state.
type Sender struct {
	initialTimeout time.Duration
	nextID         uint32
	queue          []*outMsg // un-ACKed, in id order
	retransmits    uint64
}

// Retransmits counts messages sent again (timeouts and fast retransmits).
func (s *Sender) Retransmits() uint64 { return s.retransmits }

// NewSender returns a sender whose first retransmission happens after timeout
// (OpenVPN's --tls-timeout, default 2 s), doubling after every send.
func NewSender(timeout time.Duration) *Sender {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Sender{initialTimeout: timeout}
}

// CanSend reports whether the send window has room for another message.
func (s *Sender) CanSend() bool {
	if len(s.queue) == 0 {
		return true
	}
	return s.nextID-s.queue[0].ID < SendWindow
}

// Queue assigns the next message id to a payload. The message is sent by the next
// call to Due. The caller must check CanSend first.
func (s *Sender) Queue(opcode uint8, payload []byte) uint32 {
	id := s.nextID
	s.nextID++
	s.queue = append(s.queue, &outMsg{Message: Message{ID: id, Opcode: opcode, Payload: payload}})
	return id
}

// Ack records the peer's acknowledgement of id. Unknown or repeated ids are ignored.
func (s *Sender) Ack(id uint32) {
	for i, m := range s.queue {
		if m.ID == id {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			// Fast retransmit: earlier un-ACKed messages have now been passed.
			for _, e := range s.queue[:i] {
				e.laterAcked++
			}
			return
		}
	}
}

// Pending reports how many messages await an ACK.
func (s *Sender) Pending() int { return len(s.queue) }

// Acked reports whether message id has been acknowledged (or never existed).
func (s *Sender) Acked(id uint32) bool {
	for _, m := range s.queue {
		if m.ID == id {
			return false
		}
	}
	return id < s.nextID
}

// NextID returns the id the next queued message will get.
func (s *Sender) NextID() uint32 { return s.nextID }

// Due appends to dst the messages to transmit at now (first sends, timeouts and fast
// retransmits) and updates their timers.
func (s *Sender) Due(now time.Time, dst []Message) []Message {
	for _, m := range s.queue {
		switch {
		case !m.sent:
			m.sent = true
			m.timeout = s.initialTimeout
		case m.laterAcked >= fastRetransmitAcks:
			m.laterAcked = 0
			s.retransmits++
		case !now.Before(m.nextSend):
			s.retransmits++
			m.timeout *= 2
			if m.timeout > 5*time.Minute {
				m.timeout = 5 * time.Minute
			}
		default:
			continue
		}
		m.nextSend = now.Add(m.timeout)
		dst = append(dst, m.Message)
	}
	return dst
}

// Burst schedules every un-ACKed message for immediate retransmission (OpenVPN does
// this when the peer's reset arrives).
func (s *Sender) Burst(now time.Time) {
	for _, m := range s.queue {
		if m.sent {
			m.nextSend = now
		}
	}
}

// NextDeadline returns when Due next has something to send, if anything is pending.
func (s *Sender) NextDeadline() (time.Time, bool) {
	var t time.Time
	ok := false
	for _, m := range s.queue {
		if !m.sent {
			return time.Time{}, true
		}
		if !ok || m.nextSend.Before(t) {
			t, ok = m.nextSend, true
		}
	}
	return t, ok
}

// Receiver tracks incoming messages of one key state.
type Receiver struct {
	next    uint32
	buf     map[uint32]Message
	acks    []uint32 // ids to acknowledge, oldest first
	mru     []uint32 // recently sent ACKs, newest first
	started bool
}

// NewReceiver returns a receiver expecting message id 0 first.
func NewReceiver() *Receiver {
	return &Receiver{buf: make(map[uint32]Message, RecvWindow)}
}

// Result says what Receive did with a packet.
type Result int

// Receive results.
const (
	// Accepted: a new message, buffered for in-order delivery and to be ACKed.
	Accepted Result = iota
	// Duplicate: already received; it is ACKed again but not delivered.
	Duplicate
	// OutOfWindow: too far ahead; dropped without an ACK.
	OutOfWindow
)

// Receive takes a message from the peer. The payload is copied.
func (r *Receiver) Receive(m Message) Result {
	if m.ID-r.next >= RecvWindow && m.ID >= r.next {
		return OutOfWindow
	}
	r.addAck(m.ID)
	if m.ID < r.next {
		return Duplicate
	}
	if _, ok := r.buf[m.ID]; ok {
		return Duplicate
	}
	m.Payload = append([]byte(nil), m.Payload...)
	r.buf[m.ID] = m
	return Accepted
}

func (r *Receiver) addAck(id uint32) {
	for _, a := range r.acks {
		if a == id {
			return
		}
	}
	r.acks = append(r.acks, id)
}

// Next returns the next in-order message, if it has arrived.
func (r *Receiver) Next() (Message, bool) {
	m, ok := r.buf[r.next]
	if !ok {
		return Message{}, false
	}
	delete(r.buf, r.next)
	r.next++
	return m, true
}

// Expected returns the next message id to be delivered.
func (r *Receiver) Expected() uint32 { return r.next }

// HasAcks reports whether ACKs are waiting to be sent.
func (r *Receiver) HasAcks() bool { return len(r.acks) > 0 }

// TakeAcks removes up to max pending ACKs and appends them to dst. When fill is set the
// remaining room is filled with recently sent ACK ids, as OpenVPN does, which makes a
// lost ACK packet less costly.
func (r *Receiver) TakeAcks(dst []uint32, max int, fill bool) []uint32 {
	n := len(r.acks)
	if n > max {
		n = max
	}
	fresh := r.acks[:n]
	dst = append(dst, fresh...)
	for _, id := range fresh {
		r.pushMRU(id)
	}
	r.acks = append(r.acks[:0], r.acks[n:]...)
	if fill {
		for _, id := range r.mru {
			if len(dst) >= max {
				break
			}
			if !contains(dst, id) {
				dst = append(dst, id)
			}
		}
	}
	return dst
}

func (r *Receiver) pushMRU(id uint32) {
	for i, v := range r.mru {
		if v == id {
			r.mru = append(r.mru[:i], r.mru[i+1:]...)
			break
		}
	}
	r.mru = append([]uint32{id}, r.mru...)
	if len(r.mru) > mruSize {
		r.mru = r.mru[:mruSize]
	}
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// SetNextID makes the next queued message use id, as if every earlier message had
// been sent and acknowledged (a server resuming from a stateless reset, §6.2).
func (s *Sender) SetNextID(id uint32) {
	s.queue = s.queue[:0]
	s.nextID = id
}

// SetExpected makes id the next message to deliver, as if every earlier message had
// been received and acknowledged.
func (r *Receiver) SetExpected(id uint32) {
	clear(r.buf)
	r.next = id
}
