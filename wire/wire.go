// Package wire encodes and decodes the OpenVPN 2.6 packet framing that is
// independent of any cryptography: the first byte (opcode and key_id), the
// plain form of control packets (own session id, ACK part, msg-id, payload)
// and the headers of data packets.
//
// The package is pure: it performs no I/O and never panics on malformed
// input. Parsers return errors wrapping ErrShort, ErrOpcode or
// ErrTooManyAcks.
package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// Opcode is the 5-bit packet opcode stored in the top bits of byte 0 (§3).
type Opcode uint8

// Opcodes of OpenVPN 2.6. The two V1 hard resets (key-method 1) are defined
// only so they can be named and rejected; they are neither control nor data.
const (
	OpHardResetClientV1 Opcode = 1  // P_CONTROL_HARD_RESET_CLIENT_V1 (obsolete, rejected)
	OpHardResetServerV1 Opcode = 2  // P_CONTROL_HARD_RESET_SERVER_V1 (obsolete, rejected)
	OpSoftResetV1       Opcode = 3  // P_CONTROL_SOFT_RESET_V1
	OpControlV1         Opcode = 4  // P_CONTROL_V1
	OpAckV1             Opcode = 5  // P_ACK_V1
	OpDataV1            Opcode = 6  // P_DATA_V1
	OpHardResetClientV2 Opcode = 7  // P_CONTROL_HARD_RESET_CLIENT_V2
	OpHardResetServerV2 Opcode = 8  // P_CONTROL_HARD_RESET_SERVER_V2
	OpDataV2            Opcode = 9  // P_DATA_V2
	OpHardResetClientV3 Opcode = 10 // P_CONTROL_HARD_RESET_CLIENT_V3
	OpControlWKCV1      Opcode = 11 // P_CONTROL_WKC_V1
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrShort reports a packet that ends before a required field.
	ErrShort = errors.New("wire: packet too short")
	// ErrOpcode reports an opcode that is not valid in the given context.
	ErrOpcode = errors.New("wire: bad opcode")
	// ErrTooManyAcks reports a control packet with more than MaxAcks ACKs.
	ErrTooManyAcks = errors.New("wire: too many acks")
)

var opNames = [...]string{
	OpHardResetClientV1: "P_CONTROL_HARD_RESET_CLIENT_V1",
	OpHardResetServerV1: "P_CONTROL_HARD_RESET_SERVER_V1",
	OpSoftResetV1:       "P_CONTROL_SOFT_RESET_V1",
	OpControlV1:         "P_CONTROL_V1",
	OpAckV1:             "P_ACK_V1",
	OpDataV1:            "P_DATA_V1",
	OpHardResetClientV2: "P_CONTROL_HARD_RESET_CLIENT_V2",
	OpHardResetServerV2: "P_CONTROL_HARD_RESET_SERVER_V2",
	OpDataV2:            "P_DATA_V2",
	OpHardResetClientV3: "P_CONTROL_HARD_RESET_CLIENT_V3",
	OpControlWKCV1:      "P_CONTROL_WKC_V1",
}

// String returns the OpenVPN name of the opcode, e.g. "P_CONTROL_V1", or
// "P_OPCODE_<n>" for unknown values.
func (o Opcode) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "P_OPCODE_" + strconv.Itoa(int(o))
}

// IsControl reports whether o is a control-channel opcode of OpenVPN 2.6
// (3, 4, 5, 7, 8, 10, 11).
func (o Opcode) IsControl() bool {
	switch o {
	case OpSoftResetV1, OpControlV1, OpAckV1, OpHardResetClientV2,
		OpHardResetServerV2, OpHardResetClientV3, OpControlWKCV1:
		return true
	}
	return false
}

// IsData reports whether o is a data-channel opcode (6 or 9).
func (o Opcode) IsData() bool { return o == OpDataV1 || o == OpDataV2 }

// HasMsgID reports whether control packets with this opcode carry a msg-id
// (every control opcode except P_ACK_V1).
func (o Opcode) HasMsgID() bool { return o.IsControl() && o != OpAckV1 }

// KeyIDMask is the mask of the key_id in byte 0.
const KeyIDMask = 0x07

// SplitHeader splits byte 0 of a packet into opcode and key_id.
func SplitHeader(b byte) (Opcode, uint8) {
	return Opcode(b >> 3), b & KeyIDMask
}

// HeaderByte builds byte 0 of a packet from an opcode and a key_id. Only the
// low 5 bits of op and the low 3 bits of keyID are used.
func HeaderByte(op Opcode, keyID uint8) byte {
	return byte(op)<<3 | keyID&KeyIDMask
}

// SessionID is an 8-byte control-channel session id (§4). All zeros means
// "not set".
type SessionID [8]byte

// IsZero reports whether s is all zeros (an undefined session id).
func (s SessionID) IsZero() bool { return s == SessionID{} }

// String returns s as 16 lowercase hex digits.
func (s SessionID) String() string { return hex.EncodeToString(s[:]) }

// MaxAcks is the largest ACK count a receiver accepts (§5.1).
const MaxAcks = 8

// ControlPacket is a control packet in plain form: byte0 | own sid | ack part
// (§5.1, §5.2). For tls-auth and tls-crypt the wrappers in package
// controlwrap convert between this form and the wire.
type ControlPacket struct {
	Opcode          Opcode
	KeyID           uint8
	SessionID       SessionID // sender's
	Acks            []uint32  // ≤ MaxAcks
	RemoteSessionID SessionID // present on the wire iff len(Acks) > 0
	MsgID           uint32    // absent for OpAckV1
	Payload         []byte    // aliases the input after ParseControl
}

// MinControlLen is the length of the shortest valid plain control packet
// (a P_ACK_V1 with no ACKs): byte0, session id and ack_count.
const MinControlLen = 1 + 8 + 1

// ParseControl decodes a plain control packet. It rejects data opcodes,
// unknown and obsolete opcodes, more than MaxAcks ACKs and truncated fields.
// Payload aliases plain; Acks is newly allocated when non-empty.
func ParseControl(plain []byte) (ControlPacket, error) {
	var p ControlPacket
	err := ParseControlInto(&p, plain)
	return p, err
}

// ParseControlInto is ParseControl that decodes into p and reuses the
// capacity of p.Acks, so that steady-state parsing does not allocate. On
// error p is left in an unspecified state.
func ParseControlInto(p *ControlPacket, plain []byte) error {
	if len(plain) < 1 {
		return fmt.Errorf("control packet is empty: %w", ErrShort)
	}
	op, kid := SplitHeader(plain[0])
	if !op.IsControl() {
		return fmt.Errorf("control packet with opcode %v: %w", op, ErrOpcode)
	}
	if len(plain) < MinControlLen {
		return fmt.Errorf("%v: %d bytes, need at least %d: %w", op, len(plain), MinControlLen, ErrShort)
	}
	p.Opcode, p.KeyID = op, kid
	copy(p.SessionID[:], plain[1:9])
	n := int(plain[9])
	if n > MaxAcks {
		return fmt.Errorf("%v: %d acks, max %d: %w", op, n, MaxAcks, ErrTooManyAcks)
	}
	off := 10
	need := off + 4*n
	if n > 0 {
		need += 8
	}
	if op.HasMsgID() {
		need += 4
	}
	if len(plain) < need {
		return fmt.Errorf("%v with %d acks: %d bytes, need at least %d: %w", op, n, len(plain), need, ErrShort)
	}
	p.Acks = p.Acks[:0]
	if n > 0 && p.Acks == nil {
		p.Acks = make([]uint32, 0, n)
	}
	for i := 0; i < n; i++ {
		p.Acks = append(p.Acks, binary.BigEndian.Uint32(plain[off:]))
		off += 4
	}
	if n == 0 {
		p.RemoteSessionID = SessionID{}
	} else {
		copy(p.RemoteSessionID[:], plain[off:off+8])
		off += 8
	}
	p.MsgID = 0
	if op.HasMsgID() {
		p.MsgID = binary.BigEndian.Uint32(plain[off:])
		off += 4
	}
	p.Payload = plain[off:len(plain):len(plain)]
	return nil
}

// Len returns the encoded length of p as produced by Append.
func (p *ControlPacket) Len() int {
	n := len(p.Acks)
	if n > MaxAcks {
		n = MaxAcks
	}
	l := MinControlLen + 4*n + len(p.Payload)
	if n > 0 {
		l += 8
	}
	if p.Opcode != OpAckV1 {
		l += 4
	}
	return l
}

// Append appends the plain encoding of p to dst and returns the extended
// slice. At most MaxAcks ACKs are encoded: callers must keep len(Acks) within
// that limit (OpenVPN sends at most 4 on P_CONTROL_V1). MsgID is omitted for
// OpAckV1. Append does not validate the opcode.
func (p *ControlPacket) Append(dst []byte) []byte {
	acks := p.Acks
	if len(acks) > MaxAcks {
		acks = acks[:MaxAcks]
	}
	dst = append(dst, HeaderByte(p.Opcode, p.KeyID))
	dst = append(dst, p.SessionID[:]...)
	dst = append(dst, byte(len(acks)))
	for _, a := range acks {
		dst = binary.BigEndian.AppendUint32(dst, a)
	}
	if len(acks) > 0 {
		dst = append(dst, p.RemoteSessionID[:]...)
	}
	if p.Opcode != OpAckV1 {
		dst = binary.BigEndian.AppendUint32(dst, p.MsgID)
	}
	return append(dst, p.Payload...)
}

// PeekControl returns the opcode, key_id and sender session id of a control
// packet in any wrapping mode (they are always the first 9 bytes and always
// in clear), without authenticating it.
func PeekControl(pkt []byte) (op Opcode, keyID uint8, sid SessionID, err error) {
	if len(pkt) < 9 {
		return 0, 0, sid, fmt.Errorf("control packet: %d bytes, need at least 9: %w", len(pkt), ErrShort)
	}
	op, keyID = SplitHeader(pkt[0])
	if !op.IsControl() {
		return op, keyID, sid, fmt.Errorf("control packet with opcode %v: %w", op, ErrOpcode)
	}
	copy(sid[:], pkt[1:9])
	return op, keyID, sid, nil
}

// Data-channel header constants (§10.1).
const (
	DataV1HeaderLen = 1        // P_DATA_V1: op|kid
	DataV2HeaderLen = 4        // P_DATA_V2: op|kid + 3-byte peer-id
	MaxPeerID       = 0xFFFFFF // largest 24-bit peer-id
	NoPeerID        = 0xFFFFFF // peer-id value meaning "none assigned" (never push it)
)

// DataHeader parses the header of a data packet. For P_DATA_V1 peerID is -1
// and hdrLen 1; for P_DATA_V2 peerID is the 24-bit peer-id and hdrLen 4.
// The payload (data-pid, tag, ciphertext) starts at pkt[hdrLen:].
func DataHeader(pkt []byte) (op Opcode, keyID uint8, peerID int32, hdrLen int, err error) {
	if len(pkt) < 1 {
		return 0, 0, -1, 0, fmt.Errorf("data packet is empty: %w", ErrShort)
	}
	op, keyID = SplitHeader(pkt[0])
	switch op {
	case OpDataV1:
		return op, keyID, -1, DataV1HeaderLen, nil
	case OpDataV2:
		if len(pkt) < DataV2HeaderLen {
			return op, keyID, -1, 0, fmt.Errorf("%v: %d bytes, need at least %d: %w", op, len(pkt), DataV2HeaderLen, ErrShort)
		}
		peerID = int32(pkt[1])<<16 | int32(pkt[2])<<8 | int32(pkt[3])
		return op, keyID, peerID, DataV2HeaderLen, nil
	}
	return op, keyID, -1, 0, fmt.Errorf("data packet with opcode %v: %w", op, ErrOpcode)
}

// AppendDataHeader appends a data-packet header: P_DATA_V2 (4 bytes) with the
// low 24 bits of peerID when peerID >= 0, else P_DATA_V1 (1 byte).
func AppendDataHeader(dst []byte, keyID uint8, peerID int32) []byte {
	if peerID < 0 {
		return append(dst, HeaderByte(OpDataV1, keyID))
	}
	return append(dst, HeaderByte(OpDataV2, keyID), byte(peerID>>16), byte(peerID>>8), byte(peerID))
}

// DataHeaderLen returns the header length AppendDataHeader writes for peerID.
func DataHeaderLen(peerID int32) int {
	if peerID < 0 {
		return DataV1HeaderLen
	}
	return DataV2HeaderLen
}
