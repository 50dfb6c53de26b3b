package tlsengine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

func init() { Register(GoEngine{}) }

// GoEngine is the crypto/tls engine.
type GoEngine struct{}

// Name implements Engine.
func (GoEngine) Name() string { return "go" }

// NewSession implements Engine.
func (GoEngine) NewSession(cfg *Config) (Session, error) {
	if cfg == nil || cfg.VerifyPeer == nil {
		return nil, errors.New("tls: a peer verification function is required")
	}
	verify := cfg.VerifyPeer
	tc := &tls.Config{
		Certificates: cfg.Certificates,
		MinVersion:   cfg.MinVersion,
		MaxVersion:   cfg.MaxVersion,
		CipherSuites: cfg.CipherSuites,
		// tls-groups: the names crypto/tls knows; see options.go.
		CurvePreferences: cfg.goCurvePreferences(),
		// OpenVPN checks chains and KU/EKU itself and never checks host names, so the
		// default verifier is replaced by VerifyPeer.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verify(raw)
		},
		// Key method 2 must travel in one TLS record (OpenVPN reads one record).
		DynamicRecordSizingDisabled: true,
		// Every OpenVPN key state uses a fresh full handshake.
		SessionTicketsDisabled: true,
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	s := &goSession{}
	s.cond = sync.NewCond(&s.mu)
	p := &pipe{s: s}
	if cfg.Server {
		tc.ClientAuth = tls.RequireAnyClientCert
		s.conn = tls.Server(p, tc)
	} else {
		s.conn = tls.Client(p, tc)
	}
	go s.run()
	s.settle()
	return s, nil
}

// goSession adapts a blocking *tls.Conn to the memory-BIO Session interface.
type goSession struct {
	conn *tls.Conn

	mu      sync.Mutex
	cond    *sync.Cond
	in      []byte // ciphertext from the peer not yet read by TLS
	out     []byte // ciphertext TLS wrote
	plain   []byte // application data TLS delivered
	pending [][]byte
	waiting bool // the TLS goroutine is blocked in Read with nothing to read
	done    bool // the TLS goroutine has exited
	closed  bool
	hsDone  bool
	sync    bool // handshake done: reads happen on the caller's goroutine
	err     error
	state   tls.ConnectionState
}

// run performs the handshake on a goroutine of its own (crypto/tls has no
// non-blocking handshake). Once the handshake is done the goroutine ends: later
// records are read synchronously by PutCiphertext (the pipe then reports "would
// block" instead of waiting), so an established session costs no goroutine.
func (s *goSession) run() {
	err := s.conn.Handshake()
	if err == nil {
		st := s.conn.ConnectionState()
		s.mu.Lock()
		s.hsDone, s.state, s.sync = true, st, true
		s.mu.Unlock()
		// Records that arrived with the last handshake flight, read before the
		// caller (waiting in settle) looks at the plaintext.
		s.readAvailable()
	}
	s.mu.Lock()
	if err != nil && s.err == nil && !s.closed {
		s.err = fmt.Errorf("tls: %w", err)
	}
	s.done = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// readAvailable reads every complete record buffered in the pipe (after the
// handshake, on the caller's goroutine).
func (s *goSession) readAvailable() {
	var buf [4096]byte
	for {
		n, err := s.conn.Read(buf[:])
		if n > 0 {
			s.mu.Lock()
			s.plain = append(s.plain, buf[:n]...)
			s.mu.Unlock()
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, errWouldBlock) && !errors.Is(err, io.EOF) && !errors.Is(err, ErrClosed) {
			s.mu.Lock()
			if s.err == nil && !s.closed {
				s.err = fmt.Errorf("tls: %w", err)
			}
			s.mu.Unlock()
		}
		return
	}
}

// errWouldBlock is what the pipe returns to crypto/tls when no ciphertext is buffered
// after the handshake. It is a temporary timeout, so crypto/tls keeps the connection
// usable.
var errWouldBlock = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tls pipe: no data buffered" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// settle waits until the TLS goroutine has consumed all input and blocks for more, or
// has exited. It bounds the wait so a misbehaving peer cannot hang the caller.
func (s *goSession) settle() {
	deadline := time.Now().Add(10 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.done && !(s.waiting && len(s.in) == 0) {
		if time.Now().After(deadline) {
			if s.err == nil {
				s.err = errors.New("tls: engine did not settle within 10s")
			}
			return
		}
		s.cond.Wait()
	}
}

func (s *goSession) PutCiphertext(b []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.done && !s.sync {
		err := s.err
		s.mu.Unlock()
		if err == nil {
			return ErrClosed
		}
		return err
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.in = append(s.in, b...)
	sync := s.sync
	s.cond.Broadcast()
	s.mu.Unlock()
	if sync {
		s.readAvailable()
	} else {
		s.settle()
	}
	s.flushPending()
	return s.Err()
}

func (s *goSession) TakeCiphertext() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.out
	s.out = nil
	return out
}

func (s *goSession) WritePlaintext(b []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.pending = append(s.pending, append([]byte(nil), b...))
	s.mu.Unlock()
	s.flushPending()
	return s.Err()
}

// flushPending writes queued plaintext once the handshake is complete. tls.Conn.Write
// only appends to the pipe, so it never blocks here.
func (s *goSession) flushPending() {
	s.mu.Lock()
	if !s.hsDone || (s.done && !s.sync) || len(s.pending) == 0 {
		s.mu.Unlock()
		return
	}
	p := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, b := range p {
		if _, err := s.conn.Write(b); err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = fmt.Errorf("tls write: %w", err)
			}
			s.mu.Unlock()
			return
		}
	}
}

func (s *goSession) ReadPlaintext() []byte {
	s.flushPending()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plain
	s.plain = nil
	return p
}

func (s *goSession) HandshakeComplete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hsDone
}

func (s *goSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *goSession) ExportKeyingMaterial(label string, context []byte, n int) ([]byte, error) {
	s.mu.Lock()
	ok := s.hsDone
	st := s.state
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("tls: keying material requested before the handshake completed")
	}
	return st.ExportKeyingMaterial(label, context, n)
}

func (s *goSession) PeerCertificates() []*x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.PeerCertificates
}

func (s *goSession) Version() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hsDone {
		return "", ""
	}
	return tls.VersionName(s.state.Version), tls.CipherSuiteName(s.state.CipherSuite)
}

func (s *goSession) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// pipe is the net.Conn crypto/tls reads from and writes to.
type pipe struct{ s *goSession }

func (p *pipe) Read(b []byte) (int, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.in) == 0 {
		if s.closed {
			return 0, ErrClosed
		}
		if s.sync {
			return 0, errWouldBlock
		}
		s.waiting = true
		s.cond.Broadcast()
		s.cond.Wait()
		s.waiting = false
	}
	n := copy(b, s.in)
	s.in = s.in[n:]
	if len(s.in) == 0 {
		s.in = nil
	}
	return n, nil
}

func (p *pipe) Write(b []byte) (int, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.out = append(s.out, b...)
	return len(b), nil
}

func (p *pipe) Close() error                       { p.s.Close(); return nil }
func (p *pipe) LocalAddr() net.Addr                { return pipeAddr{} }
func (p *pipe) RemoteAddr() net.Addr               { return pipeAddr{} }
func (p *pipe) SetDeadline(t time.Time) error      { return nil }
func (p *pipe) SetReadDeadline(t time.Time) error  { return nil }
func (p *pipe) SetWriteDeadline(t time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "openvpn-control" }
func (pipeAddr) String() string  { return "control-channel" }
