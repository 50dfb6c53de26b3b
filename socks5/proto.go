package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Version is the SOCKS protocol version this package speaks.
const Version = 5

// Authentication methods (RFC 1928 §3).
const (
	MethodNoAuth       byte = 0x00
	MethodNoAcceptable byte = 0xff
)

// Command is a request's CMD field (RFC 1928 §4).
type Command byte

// Commands. The server implements Connect and UDPAssociate.
const (
	Connect      Command = 1
	Bind         Command = 2
	UDPAssociate Command = 3
)

// String returns the command's RFC name.
func (c Command) String() string {
	switch c {
	case Connect:
		return "CONNECT"
	case Bind:
		return "BIND"
	case UDPAssociate:
		return "UDP ASSOCIATE"
	}
	return "command(" + strconv.Itoa(int(c)) + ")"
}

// Address types (ATYP).
const (
	atypIPv4   byte = 1
	atypDomain byte = 3
	atypIPv6   byte = 4
)

// Reply is a reply's REP field (RFC 1928 §6).
type Reply byte

// Reply codes.
const (
	Succeeded               Reply = 0
	GeneralFailure          Reply = 1
	NotAllowed              Reply = 2
	NetworkUnreachable      Reply = 3
	HostUnreachable         Reply = 4
	ConnectionRefused       Reply = 5
	TTLExpired              Reply = 6
	CommandNotSupported     Reply = 7
	AddressTypeNotSupported Reply = 8
)

// String returns the reply's RFC meaning.
func (r Reply) String() string {
	switch r {
	case Succeeded:
		return "succeeded"
	case GeneralFailure:
		return "general SOCKS server failure"
	case NotAllowed:
		return "connection not allowed by ruleset"
	case NetworkUnreachable:
		return "network unreachable"
	case HostUnreachable:
		return "host unreachable"
	case ConnectionRefused:
		return "connection refused"
	case TTLExpired:
		return "TTL expired"
	case CommandNotSupported:
		return "command not supported"
	case AddressTypeNotSupported:
		return "address type not supported"
	}
	return "reply(" + strconv.Itoa(int(r)) + ")"
}

// Parse errors. ParseRequest and ParseDatagram wrap them.
var (
	// ErrShort means the input ends before the message does.
	ErrShort = errors.New("socks5: message truncated")
	// ErrVersion means the version byte is not 5.
	ErrVersion = errors.New("socks5: unsupported version")
	// ErrCommand means the command is not one of RFC 1928's.
	ErrCommand = errors.New("socks5: unknown command")
	// ErrAddrType means the address type is not IPv4, DOMAIN or IPv6.
	ErrAddrType = errors.New("socks5: unknown address type")
	// ErrBadAddr means the address is malformed (empty or invalid name,
	// port 0 where a port is needed).
	ErrBadAddr = errors.New("socks5: malformed address")
	// ErrReserved means a reserved field is not zero.
	ErrReserved = errors.New("socks5: reserved field not zero")
)

// Addr is a SOCKS address: an IP address or a domain name, and a port.
// Exactly one of IP and Name is set.
type Addr struct {
	IP   netip.Addr
	Name string
	Port uint16
}

// String returns host:port, with brackets around IPv6 addresses.
func (a Addr) String() string {
	host := a.Name
	if a.IP.IsValid() {
		host = a.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
}

// AddrFromAddrPort returns the Addr of ap, unmapping IPv4-mapped IPv6.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

// Append appends the ATYP, address and port fields encoding a. A name
// longer than 255 bytes cannot be encoded; Append truncates it, so callers
// check names first (ParseRequest never returns one).
func (a Addr) Append(dst []byte) []byte {
	switch {
	case a.IP.Is4() || a.IP.Is4In6():
		b := a.IP.Unmap().As4()
		dst = append(append(dst, atypIPv4), b[:]...)
	case a.IP.Is6():
		b := a.IP.As16()
		dst = append(append(dst, atypIPv6), b[:]...)
	default:
		name := a.Name
		if len(name) > 255 {
			name = name[:255]
		}
		dst = append(append(dst, atypDomain, byte(len(name))), name...)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port)
}

// parseAddr parses ATYP, address and port at the start of b and returns
// the number of bytes used.
func parseAddr(b []byte) (Addr, int, error) {
	if len(b) < 1 {
		return Addr{}, 0, ErrShort
	}
	var a Addr
	var n int
	switch b[0] {
	case atypIPv4:
		if len(b) < 1+4+2 {
			return Addr{}, 0, ErrShort
		}
		a.IP = netip.AddrFrom4([4]byte(b[1:5]))
		n = 5
	case atypIPv6:
		if len(b) < 1+16+2 {
			return Addr{}, 0, ErrShort
		}
		a.IP = netip.AddrFrom16([16]byte(b[1:17])).Unmap()
		n = 17
	case atypDomain:
		if len(b) < 2 {
			return Addr{}, 0, ErrShort
		}
		l := int(b[1])
		if len(b) < 2+l+2 {
			return Addr{}, 0, ErrShort
		}
		name := string(b[2 : 2+l])
		if err := checkName(name); err != nil {
			return Addr{}, 0, err
		}
		if ip, err := netip.ParseAddr(name); err == nil && ip.Zone() == "" {
			// Some clients send IP literals as names.
			a.IP = ip.Unmap()
		} else {
			a.Name = name
		}
		n = 2 + l
	default:
		return Addr{}, 0, fmt.Errorf("%w %d", ErrAddrType, b[0])
	}
	a.Port = binary.BigEndian.Uint16(b[n:])
	return a, n + 2, nil
}

// checkName accepts printable ASCII names without spaces: host names,
// punycode and the like. It rejects what could confuse a resolver or a log.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty domain name", ErrBadAddr)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: domain name has byte %#x", ErrBadAddr, c)
		}
	}
	return nil
}

// Request is a client's request (RFC 1928 §4).
type Request struct {
	Command Command
	Addr    Addr
}

// ParseRequest parses a request at the start of b and returns it with the
// number of bytes it used. It wraps ErrShort if b ends early (read more and
// retry), ErrVersion, ErrReserved, ErrCommand (the Request's Command is
// still set) or ErrAddrType/ErrBadAddr. It never reads beyond the request.
func ParseRequest(b []byte) (Request, int, error) {
	if len(b) < 4 {
		return Request{}, 0, ErrShort
	}
	if b[0] != Version {
		return Request{}, 0, fmt.Errorf("%w %d", ErrVersion, b[0])
	}
	req := Request{Command: Command(b[1])}
	if b[2] != 0 {
		return req, 0, fmt.Errorf("request: %w", ErrReserved)
	}
	a, n, err := parseAddr(b[3:])
	if err != nil {
		return req, 0, err
	}
	req.Addr = a
	switch req.Command {
	case Connect, Bind, UDPAssociate:
	default:
		return req, 3 + n, fmt.Errorf("%w %d", ErrCommand, b[1])
	}
	return req, 3 + n, nil
}

// Append appends the wire form of r.
func (r Request) Append(dst []byte) []byte {
	return r.Addr.Append(append(dst, Version, byte(r.Command), 0))
}

// readRequest reads exactly one request from r: the fixed part and the
// first address byte, then exactly what ATYP says remains.
func readRequest(r io.Reader) (Request, error) {
	buf := make([]byte, 4+1+255+2) // the longest request
	have, need := 0, 5
	for {
		if _, err := io.ReadFull(r, buf[have:need]); err != nil {
			return Request{}, err
		}
		have = need
		req, _, err := ParseRequest(buf[:have])
		if !errors.Is(err, ErrShort) {
			return req, err
		}
		need = requestLen(buf[:have])
		if need <= have {
			return req, err // unreachable for a prefix ParseRequest called short
		}
	}
}

// requestLen returns the full length of the request whose first five bytes
// are in b.
func requestLen(b []byte) int {
	switch b[3] {
	case atypIPv4:
		return 4 + 4 + 2
	case atypIPv6:
		return 4 + 16 + 2
	case atypDomain:
		return 4 + 1 + int(b[4]) + 2
	}
	return len(b)
}

// appendReply appends a reply with the bound address bnd.
func appendReply(dst []byte, rep Reply, bnd Addr) []byte {
	if !bnd.IP.IsValid() && bnd.Name == "" {
		bnd.IP = netip.IPv4Unspecified()
	}
	return bnd.Append(append(dst, Version, byte(rep), 0))
}

// ParseReply parses a server's reply at the start of b (for clients and
// tests). It returns the reply code, the bound address and the bytes used.
func ParseReply(b []byte) (Reply, Addr, int, error) {
	if len(b) < 4 {
		return 0, Addr{}, 0, ErrShort
	}
	if b[0] != Version {
		return 0, Addr{}, 0, fmt.Errorf("%w %d", ErrVersion, b[0])
	}
	a, n, err := parseAddr(b[3:])
	if err != nil {
		return 0, Addr{}, 0, err
	}
	return Reply(b[1]), a, 3 + n, nil
}

// ParseDatagram parses a UDP ASSOCIATE datagram (RFC 1928 §7): it returns
// the fragment number (0 for a whole datagram), the address and the payload,
// which aliases b.
func ParseDatagram(b []byte) (frag byte, addr Addr, payload []byte, err error) {
	if len(b) < 4 {
		return 0, Addr{}, nil, ErrShort
	}
	if b[0] != 0 || b[1] != 0 {
		return 0, Addr{}, nil, fmt.Errorf("datagram: %w", ErrReserved)
	}
	a, n, err := parseAddr(b[3:])
	if err != nil {
		return 0, Addr{}, nil, err
	}
	return b[2], a, b[3+n:], nil
}

// AppendDatagram appends a whole (unfragmented) UDP ASSOCIATE datagram
// carrying payload for or from addr.
func AppendDatagram(dst []byte, addr Addr, payload []byte) []byte {
	dst = addr.Append(append(dst, 0, 0, 0))
	return append(dst, payload...)
}
