package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestOpcodeClassification(t *testing.T) {
	tests := []struct {
		op      Opcode
		name    string
		control bool
		data    bool
		msgID   bool
	}{
		{0, "P_OPCODE_0", false, false, false},
		{OpHardResetClientV1, "P_CONTROL_HARD_RESET_CLIENT_V1", false, false, false},
		{OpHardResetServerV1, "P_CONTROL_HARD_RESET_SERVER_V1", false, false, false},
		{OpSoftResetV1, "P_CONTROL_SOFT_RESET_V1", true, false, true},
		{OpControlV1, "P_CONTROL_V1", true, false, true},
		{OpAckV1, "P_ACK_V1", true, false, false},
		{OpDataV1, "P_DATA_V1", false, true, false},
		{OpHardResetClientV2, "P_CONTROL_HARD_RESET_CLIENT_V2", true, false, true},
		{OpHardResetServerV2, "P_CONTROL_HARD_RESET_SERVER_V2", true, false, true},
		{OpDataV2, "P_DATA_V2", false, true, false},
		{OpHardResetClientV3, "P_CONTROL_HARD_RESET_CLIENT_V3", true, false, true},
		{OpControlWKCV1, "P_CONTROL_WKC_V1", true, false, true},
		{12, "P_OPCODE_12", false, false, false},
		{31, "P_OPCODE_31", false, false, false},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.name {
			t.Errorf("Opcode(%d).String() = %q, want %q", tt.op, got, tt.name)
		}
		if got := tt.op.IsControl(); got != tt.control {
			t.Errorf("Opcode(%d).IsControl() = %v, want %v", tt.op, got, tt.control)
		}
		if got := tt.op.IsData(); got != tt.data {
			t.Errorf("Opcode(%d).IsData() = %v, want %v", tt.op, got, tt.data)
		}
		if got := tt.op.HasMsgID(); got != tt.msgID {
			t.Errorf("Opcode(%d).HasMsgID() = %v, want %v", tt.op, got, tt.msgID)
		}
	}
}

func TestHeaderByte(t *testing.T) {
	tests := []struct {
		op  Opcode
		kid uint8
		b   byte
	}{
		{OpSoftResetV1, 1, 0x19},
		{OpControlV1, 0, 0x20},
		{OpAckV1, 7, 0x2f},
		{OpDataV1, 0, 0x30},
		{OpHardResetClientV2, 0, 0x38},
		{OpHardResetServerV2, 0, 0x40},
		{OpDataV2, 3, 0x4b},
		{OpHardResetClientV3, 0, 0x50},
		{OpControlWKCV1, 2, 0x5a},
	}
	for _, tt := range tests {
		if got := HeaderByte(tt.op, tt.kid); got != tt.b {
			t.Errorf("HeaderByte(%v, %d) = %#x, want %#x", tt.op, tt.kid, got, tt.b)
		}
		op, kid := SplitHeader(tt.b)
		if op != tt.op || kid != tt.kid {
			t.Errorf("SplitHeader(%#x) = %v, %d, want %v, %d", tt.b, op, kid, tt.op, tt.kid)
		}
	}
	if got := HeaderByte(OpControlV1, 9); got != 0x21 {
		t.Errorf("HeaderByte(P_CONTROL_V1, 9) = %#x, want %#x (key_id masked)", got, 0x21)
	}
	for b := 0; b < 256; b++ {
		op, kid := SplitHeader(byte(b))
		if got := HeaderByte(op, kid); got != byte(b) {
			t.Errorf("HeaderByte(SplitHeader(%#x)) = %#x", b, got)
		}
	}
}

func TestSessionID(t *testing.T) {
	var z SessionID
	if !z.IsZero() {
		t.Errorf("SessionID{}.IsZero() = false, want true")
	}
	s := SessionID{0, 0, 0, 0, 0, 0, 0, 1}
	if s.IsZero() {
		t.Errorf("%v.IsZero() = true, want false", s)
	}
	if got, want := s.String(), "0000000000000001"; got != want {
		t.Errorf("SessionID.String() = %q, want %q", got, want)
	}
}

var (
	sidA = SessionID{0x7e, 0x47, 0x02, 0xd4, 0xe2, 0x62, 0xac, 0x13}
	sidB = SessionID{0xce, 0x65, 0x85, 0x81, 0xea, 0xc8, 0x8d, 0x64}
)

// Packets observed in the lab (§5.2).
func TestParseControlLabVectors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want ControlPacket
	}{
		{
			name: "client hard reset",
			hex:  "387e4702d4e262ac130000000000",
			want: ControlPacket{Opcode: OpHardResetClientV2, SessionID: sidA, Payload: []byte{}},
		},
		{
			name: "server hard reset",
			hex:  "40ce658581eac88d6401000000007e4702d4e262ac1300000000",
			want: ControlPacket{Opcode: OpHardResetServerV2, SessionID: sidB, Acks: []uint32{0}, RemoteSessionID: sidA, Payload: []byte{}},
		},
		{
			name: "first control",
			hex:  "207e4702d4e262ac130100000000ce658581eac88d640000000116030101",
			want: ControlPacket{Opcode: OpControlV1, SessionID: sidA, Acks: []uint32{0}, RemoteSessionID: sidB, MsgID: 1, Payload: []byte{0x16, 0x03, 0x01, 0x01}},
		},
		{
			name: "ack with two acks",
			hex:  "2a7e4702d4e262ac130200000005ffffffffce658581eac88d64",
			want: ControlPacket{Opcode: OpAckV1, KeyID: 2, SessionID: sidA, Acks: []uint32{5, 0xffffffff}, RemoteSessionID: sidB, Payload: []byte{}},
		},
		{
			name: "soft reset key 1",
			hex:  "197e4702d4e262ac130000000003",
			want: ControlPacket{Opcode: OpSoftResetV1, KeyID: 1, SessionID: sidA, MsgID: 3, Payload: []byte{}},
		},
	}
	for _, tt := range tests {
		in := mustHex(t, tt.hex)
		got, err := ParseControl(in)
		if err != nil {
			t.Errorf("%s: ParseControl(%s) error %v", tt.name, tt.hex, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseControl(%s) = %+v, want %+v", tt.name, tt.hex, got, tt.want)
		}
		if out := got.Append(nil); !bytes.Equal(out, in) {
			t.Errorf("%s: Append = %x, want %x", tt.name, out, in)
		}
		if got.Len() != len(in) {
			t.Errorf("%s: Len() = %d, want %d", tt.name, got.Len(), len(in))
		}
	}
}

func TestParseControlErrors(t *testing.T) {
	sid := "0102030405060708"
	tests := []struct {
		name string
		hex  string
		err  error
	}{
		{"empty", "", ErrShort},
		{"only byte0", "38", ErrShort},
		{"no ack count", "38" + sid, ErrShort},
		{"no msg-id", "38" + sid + "00", ErrShort},
		{"short msg-id", "38" + sid + "00000000", ErrShort},
		{"truncated ack", "20" + sid + "01000000", ErrShort},
		{"missing remote sid", "20" + sid + "0100000000", ErrShort},
		{"short remote sid", "20" + sid + "0100000000" + "01020304050607", ErrShort},
		{"ack without remote sid", "28" + sid + "0100000000", ErrShort},
		{"nine acks", "28" + sid + "09" + "000000000000000000000000000000000000000000000000000000000000000000000000" + sid, ErrTooManyAcks},
		{"255 acks", "28" + sid + "ff", ErrTooManyAcks},
		{"data v1", "30" + sid + "0000000000", ErrOpcode},
		{"data v2", "48" + sid + "0000000000", ErrOpcode},
		{"hard reset v1 client", "08" + sid + "0000000000", ErrOpcode},
		{"hard reset v1 server", "10" + sid + "0000000000", ErrOpcode},
		{"opcode 0", "00" + sid + "0000000000", ErrOpcode},
		{"opcode 12", "60" + sid + "0000000000", ErrOpcode},
		{"opcode 31", "f8" + sid + "0000000000", ErrOpcode},
	}
	for _, tt := range tests {
		in := mustHex(t, tt.hex)
		_, err := ParseControl(in)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: ParseControl(%s) error = %v, want %v", tt.name, tt.hex, err, tt.err)
		}
	}
}

func TestParseControlEdgeAccepts(t *testing.T) {
	sid := "0102030405060708"
	tests := []struct {
		name string
		hex  string
		acks int
	}{
		{"ack with no acks", "28" + sid + "00", 0},
		{"eight acks on ack", "28" + sid + "08" + "0000000100000002000000030000000400000005000000060000000700000008" + sid, 8},
		{"eight acks on control", "20" + sid + "08" + "0000000100000002000000030000000400000005000000060000000700000008" + sid + "00000009" + "aabb", 8},
		{"wkc", "58" + sid + "00" + "00000001" + "0102", 0},
	}
	for _, tt := range tests {
		in := mustHex(t, tt.hex)
		p, err := ParseControl(in)
		if err != nil {
			t.Errorf("%s: ParseControl(%s) error %v", tt.name, tt.hex, err)
			continue
		}
		if len(p.Acks) != tt.acks {
			t.Errorf("%s: len(Acks) = %d, want %d", tt.name, len(p.Acks), tt.acks)
		}
		if out := p.Append(nil); !bytes.Equal(out, in) {
			t.Errorf("%s: Append = %x, want %x", tt.name, out, in)
		}
	}
}

func TestPayloadAliases(t *testing.T) {
	in := mustHex(t, "2001020304050607080000000007cafe")
	p, err := ParseControl(in)
	if err != nil {
		t.Fatal(err)
	}
	in[len(in)-1] = 0x00
	if p.Payload[1] != 0x00 {
		t.Errorf("Payload does not alias input")
	}
	// Appending to the payload must not overwrite the caller's buffer.
	if cap(p.Payload) != len(p.Payload) {
		t.Errorf("cap(Payload) = %d, want %d", cap(p.Payload), len(p.Payload))
	}
}

func TestAppendTruncatesAcks(t *testing.T) {
	p := ControlPacket{Opcode: OpAckV1, Acks: []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, RemoteSessionID: sidA}
	out := p.Append([]byte{0xee})
	if out[0] != 0xee {
		t.Fatalf("Append overwrote dst prefix")
	}
	q, err := ParseControl(out[1:])
	if err != nil {
		t.Fatalf("ParseControl(Append) error %v", err)
	}
	if len(q.Acks) != MaxAcks {
		t.Errorf("len(Acks) = %d, want %d", len(q.Acks), MaxAcks)
	}
	if p.Len() != len(out)-1 {
		t.Errorf("Len() = %d, want %d", p.Len(), len(out)-1)
	}
}

func TestParseControlIntoReuses(t *testing.T) {
	in := mustHex(t, "2001020304050607080200000001000000020102030405060708"+"00000003")
	var p ControlPacket
	if err := ParseControlInto(&p, in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := ParseControlInto(&p, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseControlInto allocs = %v, want 0", allocs)
	}
	if !reflect.DeepEqual(p.Acks, []uint32{1, 2}) || p.MsgID != 3 {
		t.Errorf("ParseControlInto = %+v", p)
	}
}

func TestPeekControl(t *testing.T) {
	in := mustHex(t, "3a0102030405060708ffff")
	op, kid, sid, err := PeekControl(in)
	if err != nil || op != OpHardResetClientV2 || kid != 2 || sid != (SessionID{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("PeekControl(%x) = %v, %d, %v, %v", in, op, kid, sid, err)
	}
	if _, _, _, err := PeekControl(in[:8]); !errors.Is(err, ErrShort) {
		t.Errorf("PeekControl(short) error = %v, want %v", err, ErrShort)
	}
	if _, _, _, err := PeekControl(mustHex(t, "480102030405060708")); !errors.Is(err, ErrOpcode) {
		t.Errorf("PeekControl(data) error = %v, want %v", err, ErrOpcode)
	}
}

func TestDataHeader(t *testing.T) {
	tests := []struct {
		hex    string
		op     Opcode
		kid    uint8
		peerID int32
		hdrLen int
		err    error
	}{
		{"4800000700000001", OpDataV2, 0, 7, 4, nil},
		{"4bffffff", OpDataV2, 3, 0xffffff, 4, nil},
		{"4f123456aa", OpDataV2, 7, 0x123456, 4, nil},
		{"30", OpDataV1, 0, -1, 1, nil},
		{"3200000001", OpDataV1, 2, -1, 1, nil},
		{"", 0, 0, -1, 0, ErrShort},
		{"48", OpDataV2, 0, -1, 0, ErrShort},
		{"480000", OpDataV2, 0, -1, 0, ErrShort},
		{"20000000", OpControlV1, 0, -1, 0, ErrOpcode},
		{"38000000", OpHardResetClientV2, 0, -1, 0, ErrOpcode},
		{"ff000000", 31, 7, -1, 0, ErrOpcode},
	}
	for _, tt := range tests {
		in := mustHex(t, tt.hex)
		op, kid, pid, hl, err := DataHeader(in)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("DataHeader(%s) error = %v, want %v", tt.hex, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if op != tt.op || kid != tt.kid || pid != tt.peerID || hl != tt.hdrLen {
			t.Errorf("DataHeader(%s) = %v, %d, %d, %d, want %v, %d, %d, %d", tt.hex, op, kid, pid, hl, tt.op, tt.kid, tt.peerID, tt.hdrLen)
		}
		if got := AppendDataHeader(nil, kid, pid); !bytes.Equal(got, in[:hl]) {
			t.Errorf("AppendDataHeader(%d, %d) = %x, want %x", kid, pid, got, in[:hl])
		}
		if got := DataHeaderLen(pid); got != hl {
			t.Errorf("DataHeaderLen(%d) = %d, want %d", pid, got, hl)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		"387e4702d4e262ac130000000000",
		"40ce658581eac88d6401000000007e4702d4e262ac1300000000",
		"207e4702d4e262ac130100000000ce658581eac88d640000000116030101",
		"2a7e4702d4e262ac130200000005ffffffffce658581eac88d64",
		"280102030405060708ff",
		"300102030405060708",
		"",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParseControl(in)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrOpcode) && !errors.Is(err, ErrTooManyAcks) {
				t.Fatalf("ParseControl(%x) error %v wraps no sentinel", in, err)
			}
			return
		}
		if !p.Opcode.IsControl() || len(p.Acks) > MaxAcks {
			t.Fatalf("ParseControl(%x) = %+v accepted invalid packet", in, p)
		}
		out := p.Append(nil)
		if !bytes.Equal(out, in) {
			t.Fatalf("Append(ParseControl(%x)) = %x", in, out)
		}
		if p.Len() != len(in) {
			t.Fatalf("Len() = %d, want %d", p.Len(), len(in))
		}
		var q ControlPacket
		q.Acks = make([]uint32, 3)
		if err := ParseControlInto(&q, in); err != nil {
			t.Fatalf("ParseControlInto(%x) error %v after ParseControl succeeded", in, err)
		}
		if !bytes.Equal(q.Append(nil), in) {
			t.Fatalf("ParseControlInto round trip differs for %x", in)
		}
	})
}

func FuzzDataHeader(f *testing.F) {
	for _, s := range []string{"4800000700000001aa850d742aad74d81b24730fa577b0ff1b33081486", "30", "48", "20", ""} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		op, kid, peerID, hl, err := DataHeader(in)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrOpcode) {
				t.Fatalf("DataHeader(%x) error %v wraps no sentinel", in, err)
			}
			return
		}
		if !op.IsData() || hl > len(in) || kid > 7 || peerID < -1 || peerID > MaxPeerID {
			t.Fatalf("DataHeader(%x) = %v, %d, %d, %d", in, op, kid, peerID, hl)
		}
		if got := AppendDataHeader(nil, kid, peerID); !bytes.Equal(got, in[:hl]) {
			t.Fatalf("AppendDataHeader(%d, %d) = %x, want %x", kid, peerID, got, in[:hl])
		}
	})
}
