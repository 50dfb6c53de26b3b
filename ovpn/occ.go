package ovpn

import "time"

// pingMagic is the payload of a keepalive ping (§12.1).
var pingMagic = [16]byte{0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb, 0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48}

// occMagic starts every OCC message inside the data channel (§12.2).
var occMagic = [16]byte{0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81, 0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c}

// OCC opcodes.
const (
	occRequest = 0
	occReply   = 1
	occExit    = 6
)

func occExitMessage() []byte {
	return append(occMagic[:len(occMagic):len(occMagic)], occExit)
}

// handleOCC acts on an OCC message body (after the magic).
func (s *Session) handleOCC(now time.Time, body []byte) {
	if len(body) == 0 {
		s.stats.DropMalformed++
		return
	}
	switch body[0] {
	case occExit:
		s.fail(EventExit, "peer sent OCC exit")
	case occRequest:
		reply := append(occMagic[:len(occMagic):len(occMagic)], occReply)
		reply = append(reply, s.cfg.Options...)
		reply = append(reply, 0)
		s.sendData(now, reply, false)
	default:
		// MTU tests and replies are informational.
	}
}
