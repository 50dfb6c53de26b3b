package socks5

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    Request
		n       int
		wantErr error
	}{
		{"connect v4", []byte{5, 1, 0, 1, 10, 0, 0, 1, 0, 80}, Request{Connect, Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}}, 10, nil},
		{"connect v6", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("fd00::1").AsSlice()...), 1, 187),
			Request{Connect, Addr{IP: netip.MustParseAddr("fd00::1"), Port: 443}}, 22, nil},
		{"v4-mapped v6 is unmapped", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("::ffff:10.0.0.1").AsSlice()...), 0, 80),
			Request{Connect, Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}}, 22, nil},
		{"connect domain", append([]byte{5, 1, 0, 3, 11}, "example.com\x00\x50"...), Request{Connect, Addr{Name: "example.com", Port: 80}}, 18, nil},
		{"domain holding an IP literal", append([]byte{5, 1, 0, 3, 8}, "10.0.0.1\x00\x35"...), Request{Connect, Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 53}}, 15, nil},
		{"udp associate zeros", []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}, Request{UDPAssociate, Addr{IP: netip.IPv4Unspecified()}}, 10, nil},
		{"trailing bytes untouched", []byte{5, 1, 0, 1, 10, 0, 0, 1, 0, 80, 0xde, 0xad}, Request{Connect, Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}}, 10, nil},
		{"short header", []byte{5, 1, 0}, Request{}, 0, ErrShort},
		{"short v4", []byte{5, 1, 0, 1, 10, 0, 0, 1, 0}, Request{Command: Connect}, 0, ErrShort},
		{"short domain", append([]byte{5, 1, 0, 3, 11}, "example"...), Request{Command: Connect}, 0, ErrShort},
		{"version 4", []byte{4, 1, 0, 1, 10, 0, 0, 1, 0, 80}, Request{}, 0, ErrVersion},
		{"reserved", []byte{5, 1, 1, 1, 10, 0, 0, 1, 0, 80}, Request{Command: Connect}, 0, ErrReserved},
		{"bad atyp", []byte{5, 1, 0, 2, 10, 0, 0, 1, 0, 80}, Request{Command: Connect}, 0, ErrAddrType},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, Request{Command: Connect}, 0, ErrBadAddr},
		{"domain with space", append([]byte{5, 1, 0, 3, 3}, "a b\x00\x50"...), Request{Command: Connect}, 0, ErrBadAddr},
		{"domain with NUL", append([]byte{5, 1, 0, 3, 3}, "ab\x00\x00\x50"...), Request{Command: Connect}, 0, ErrBadAddr},
		{"unknown command", []byte{5, 9, 0, 1, 10, 0, 0, 1, 0, 80}, Request{Command(9), Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}}, 10, ErrCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := ParseRequest(tc.in)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("ParseRequest(%x) error = %v, want %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want || n != tc.n {
				t.Fatalf("ParseRequest(%x) = %+v, %d; want %+v, %d", tc.in, got, n, tc.want, tc.n)
			}
		})
	}
}

func TestReadRequest(t *testing.T) {
	// readRequest must stop exactly at the end of the request.
	in := append([]byte{5, 1, 0, 3, 11}, "example.com\x00\x50rest"...)
	r := bytes.NewReader(in)
	req, err := readRequest(r)
	if err != nil || req.Addr.Name != "example.com" || req.Addr.Port != 80 {
		t.Fatalf("readRequest = %+v, %v", req, err)
	}
	if r.Len() != 4 {
		t.Fatalf("readRequest left %d bytes, want 4", r.Len())
	}
	if _, err := readRequest(bytes.NewReader([]byte{5, 1, 0, 1, 10})); err == nil {
		t.Fatal("readRequest(truncated) = nil error")
	}
	if _, err := readRequest(bytes.NewReader([]byte{5, 1, 0, 7, 10, 0, 0, 1, 0, 80})); !errors.Is(err, ErrAddrType) {
		t.Fatalf("readRequest(bad atyp) = %v, want ErrAddrType", err)
	}
}

func TestDatagramRoundTrip(t *testing.T) {
	for _, a := range []Addr{
		{IP: netip.MustParseAddr("10.1.2.3"), Port: 53},
		{IP: netip.MustParseAddr("2001:db8::1"), Port: 5353},
		{Name: "dns.example", Port: 53},
	} {
		b := AppendDatagram(nil, a, []byte("payload"))
		frag, got, payload, err := ParseDatagram(b)
		if err != nil || frag != 0 || got != a || string(payload) != "payload" {
			t.Errorf("ParseDatagram(AppendDatagram(%v)) = %d, %v, %q, %v", a, frag, got, payload, err)
		}
	}
	if _, _, _, err := ParseDatagram([]byte{0, 1, 0, 1, 1, 2, 3, 4, 0, 53}); !errors.Is(err, ErrReserved) {
		t.Errorf("ParseDatagram(RSV != 0) = %v, want ErrReserved", err)
	}
}

func TestAddrString(t *testing.T) {
	for _, tc := range []struct {
		a    Addr
		want string
	}{
		{Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}, "10.0.0.1:80"},
		{Addr{IP: netip.MustParseAddr("fd00::1"), Port: 80}, "[fd00::1]:80"},
		{Addr{Name: "example.com", Port: 443}, "example.com:443"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// FuzzParseRequest checks that the parser never panics, never claims more
// bytes than it was given, and that what it accepts re-encodes to the same
// bytes (and so parses again to the same request).
func FuzzParseRequest(f *testing.F) {
	for _, seed := range [][]byte{
		{5, 1, 0, 1, 10, 0, 0, 1, 0, 80},
		{5, 3, 0, 1, 0, 0, 0, 0, 0, 0},
		append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("fd00::1").AsSlice()...), 1, 187),
		append([]byte{5, 1, 0, 3, 11}, "example.com\x00\x50"...),
		append([]byte{5, 1, 0, 3, 255}, strings.Repeat("a", 255)+"\x00\x50"...),
		{5, 1, 0, 3, 0, 0, 80},
		{5, 2, 0, 1, 1, 2, 3, 4, 0, 21},
		{4, 1, 0, 80, 10, 0, 0, 1, 0},
		{5, 1, 0, 9},
		{5},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, err := ParseRequest(b)
		if n < 0 || n > len(b) {
			t.Fatalf("ParseRequest consumed %d of %d bytes", n, len(b))
		}
		if err != nil {
			if _, rerr := readRequest(bytes.NewReader(b)); rerr == nil {
				t.Fatalf("readRequest accepted what ParseRequest rejected (%v)", err)
			}
			return
		}
		if req.Addr.IP.IsValid() == (req.Addr.Name != "") {
			t.Fatalf("parsed address %#v: want exactly one of IP and Name", req.Addr)
		}
		// Names holding IP literals are returned as IPs, so compare by
		// parsing the re-encoding rather than byte for byte.
		enc := req.Append(nil)
		again, m, err := ParseRequest(enc)
		if err != nil || again != req || m != len(enc) {
			t.Fatalf("re-parse of %x = %+v, %d, %v; want %+v", enc, again, m, err, req)
		}
		if !req.Addr.IP.IsValid() && !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoding %x differs from input %x", enc, b[:n])
		}
		fromReader, err := readRequest(bytes.NewReader(b))
		if err != nil || fromReader != req {
			t.Fatalf("readRequest = %+v, %v; ParseRequest = %+v", fromReader, err, req)
		}
	})
}

// FuzzParseDatagram checks the UDP header parser the same way.
func FuzzParseDatagram(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 10, 0, 0, 1, 0, 53, 'h', 'i'})
	f.Add(append([]byte{0, 0, 0, 3, 4}, "host\x00\x35data"...))
	f.Add([]byte{0, 0, 1, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		frag, a, payload, err := ParseDatagram(b)
		if err != nil {
			return
		}
		if len(payload) > len(b) {
			t.Fatalf("payload longer than input")
		}
		if frag == 0 {
			enc := AppendDatagram(nil, a, payload)
			_, a2, p2, err := ParseDatagram(enc)
			if err != nil || a2 != a || !bytes.Equal(p2, payload) {
				t.Fatalf("round trip of %x: %v %v %x", b, err, a2, p2)
			}
		}
	})
}
