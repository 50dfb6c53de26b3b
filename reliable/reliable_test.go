package reliable

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0)

func ids(ms []Message) []uint32 {
	var out []uint32
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSendWindowAndRetransmitBackoff(t *testing.T) {
	s := NewSender(2 * time.Second)
	for i := 0; i < SendWindow; i++ {
		if !s.CanSend() {
			t.Fatalf("window closed after %d messages, want %d", i, SendWindow)
		}
		s.Queue(4, []byte{byte(i)})
	}
	if s.CanSend() {
		t.Fatal("window open with 6 un-ACKed messages")
	}
	if got := ids(s.Due(t0, nil)); !equal(got, []uint32{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("first Due = %v", got)
	}
	cases := []struct {
		at   time.Duration
		want []uint32
	}{
		{1 * time.Second, nil},
		{2 * time.Second, []uint32{0, 1, 2, 3, 4, 5}}, // first timeout: 2 s
		{5 * time.Second, nil},
		{6 * time.Second, []uint32{0, 1, 2, 3, 4, 5}}, // doubled: 4 s later
		{13 * time.Second, nil},
		{14 * time.Second, []uint32{0, 1, 2, 3, 4, 5}}, // 8 s later
	}
	for _, tc := range cases {
		if got := ids(s.Due(t0.Add(tc.at), nil)); !equal(got, tc.want) {
			t.Errorf("Due(+%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if got := s.Retransmits(); got != 18 {
		t.Errorf("Retransmits = %d, want 18 (6 messages × 3 timeouts)", got)
	}
	s.Ack(0)
	if !s.CanSend() || s.Pending() != 5 || !s.Acked(0) || s.Acked(1) {
		t.Errorf("after Ack(0): CanSend %v Pending %d Acked(0) %v Acked(1) %v", s.CanSend(), s.Pending(), s.Acked(0), s.Acked(1))
	}
	s.Ack(0) // repeated ACKs are ignored
	s.Ack(99)
	if s.Pending() != 5 {
		t.Errorf("Pending = %d after repeated/unknown ACKs", s.Pending())
	}
}

func TestFastRetransmit(t *testing.T) {
	s := NewSender(10 * time.Second)
	for i := 0; i < 5; i++ {
		s.Queue(4, nil)
	}
	s.Due(t0, nil)
	for _, id := range []uint32{2, 3} {
		s.Ack(id)
	}
	if got := ids(s.Due(t0.Add(time.Second), nil)); got != nil {
		t.Fatalf("resent %v after two later ACKs, want nothing yet", got)
	}
	s.Ack(4) // the third later ACK
	if got := ids(s.Due(t0.Add(time.Second), nil)); !equal(got, []uint32{0, 1}) {
		t.Fatalf("fast retransmit sent %v, want [0 1]", got)
	}
}

func TestReceiverOrderDuplicatesWindow(t *testing.T) {
	r := NewReceiver()
	steps := []struct {
		id   uint32
		want Result
	}{
		{1, Accepted}, {0, Accepted}, {0, Duplicate}, {1, Duplicate},
		{11, Accepted}, {12, OutOfWindow}, {2, Accepted},
	}
	for _, st := range steps {
		if got := r.Receive(Message{ID: st.id, Opcode: 4, Payload: []byte{byte(st.id)}}); got != st.want {
			t.Errorf("Receive(%d) = %v, want %v", st.id, got, st.want)
		}
	}
	var order []uint32
	for {
		m, ok := r.Next()
		if !ok {
			break
		}
		order = append(order, m.ID)
	}
	if !equal(order, []uint32{0, 1, 2}) {
		t.Errorf("delivered %v, want [0 1 2] (11 waits for 3..10)", order)
	}
	// Every accepted or duplicate packet is acknowledged once; out-of-window is not.
	if got := r.TakeAcks(nil, MaxAckPacket, false); !equal(got, []uint32{1, 0, 11, 2}) {
		t.Errorf("acks = %v, want [1 0 11 2]", got)
	}
	if r.HasAcks() {
		t.Error("acks left after taking them all")
	}
}

func TestTakeAcksLimitAndMRU(t *testing.T) {
	r := NewReceiver()
	for id := uint32(0); id < 6; id++ {
		r.Receive(Message{ID: id})
	}
	first := r.TakeAcks(nil, MaxPiggyback, true)
	if !equal(first, []uint32{0, 1, 2, 3}) {
		t.Fatalf("first piggyback = %v", first)
	}
	second := r.TakeAcks(nil, MaxPiggyback, true)
	if len(second) != MaxPiggyback || second[0] != 4 || second[1] != 5 {
		t.Fatalf("second piggyback = %v, want 4 5 then recent ids", second)
	}
	seen := map[uint32]bool{}
	for _, id := range second {
		if seen[id] {
			t.Fatalf("duplicate id in %v", second)
		}
		seen[id] = true
	}
}

func TestBurstAndDeadline(t *testing.T) {
	s := NewSender(2 * time.Second)
	s.Queue(7, nil)
	if d, ok := s.NextDeadline(); !ok || !d.IsZero() {
		t.Fatalf("unsent message: NextDeadline = %v, %v; want now", d, ok)
	}
	s.Due(t0, nil)
	if d, _ := s.NextDeadline(); !d.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("NextDeadline = %v, want +2s", d)
	}
	s.Burst(t0.Add(time.Second))
	if got := ids(s.Due(t0.Add(time.Second), nil)); !equal(got, []uint32{0}) {
		t.Fatalf("after Burst, Due = %v", got)
	}
	s.SetNextID(5)
	if s.Pending() != 0 || s.NextID() != 5 {
		t.Errorf("SetNextID: Pending %d NextID %d", s.Pending(), s.NextID())
	}
}
