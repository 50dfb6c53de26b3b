package handlers

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"

	"weft/compress"
	"weft/config"
	"weft/controlwrap"
	"weft/datachan"
	"weft/ovpn"
	"weft/tlsengine"
)

// ClientParamsFromConfig turns a parsed OpenVPN client config into ClientParams,
// preparing the TLS identity, the peer checks and the control-channel wrapping.
// engine selects the TLS engine ("" for the default).
func ClientParamsFromConfig(c *config.Client, engine string, log *slog.Logger) (ClientParams, error) {
	var p ClientParams
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, r := range c.Remotes {
		p.Remotes = append(p.Remotes, Remote{Host: r.Host, Port: r.Port, Proto: r.Proto})
	}
	p.RemoteRandom = c.RemoteRandom
	p.ConnectRetry = c.ConnectRetry
	p.ConnectRetryMax = c.ConnectRetryMax
	p.MaxAttempts = c.ConnectRetryLimit
	p.ConnectTimeout = c.ServerPollTimeout
	p.Device = c.Dev
	p.TunMTU = c.TunMTU
	p.RouteNoPull = c.RouteNoPull
	p.Pipeline = c.DataPipeline
	p.Logger = log

	if engine == "" {
		engine = c.TLSEngine
	}
	tcp := len(p.Remotes) > 0 && p.Remotes[0].isTCP()
	var err error
	if p.Session, p.NewWrapper, err = sessionTemplate(&c.Common, ovpn.RoleClient, engine, tcp, log); err != nil {
		return p, err
	}
	if c.TLSVersionMinOrHighest && p.Session.TLSConfig.MinVersion == tls.VersionTLS13 {
		// "or-highest": fall back to the highest version we support, which is 1.3.
		p.Session.TLSConfig.MinVersion = tls.VersionTLS13
	}
	var extra []string
	for k, v := range c.Setenv {
		if strings.HasPrefix(k, "UV_") {
			extra = append(extra, k+"="+v)
		}
	}
	p.Session.Pull = c.Pull
	p.Session.PeerInfoExtra = strings.Join(extra, "\n")
	p.Session.Username, p.Session.Password = c.Username, c.Password
	p.Session.ExplicitExitNotify = c.ExplicitExitNotify
	return p, nil
}

// sessionTemplate builds what client and server sessions share: the TLS engine,
// identity, peer checks (chain, remote-cert-*, verify-x509-name, crl-verify),
// versions and cipher settings; the control-channel wrapping; data ciphers;
// compression; the OCC options string; and the timers.
func sessionTemplate(c *config.Common, role ovpn.Role, engine string, tcp bool, log *slog.Logger) (ovpn.Config, func() (controlwrap.Wrapper, error), error) {
	server := role == ovpn.RoleServer
	eng, err := tlsengine.Lookup(engine)
	if err != nil {
		return ovpn.Config{}, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	tc := &tlsengine.Config{Server: server}
	cert, err := c.Certificate()
	if err != nil {
		return ovpn.Config{}, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	} else if server {
		return ovpn.Config{}, nil, fmt.Errorf("%s: a server needs cert and key", c.Name)
	}
	opts, err := c.CertCheckOptions()
	if err != nil {
		return ovpn.Config{}, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	verify := opts.VerifyPeerCertificate()
	what := "certificate verification failed"
	if server {
		what = "client certificate verification failed"
	}
	tc.VerifyPeer = func(raw [][]byte) error {
		if err := verify(raw, nil); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if tc.MinVersion, err = tlsVersion(c.TLSVersionMin); err != nil {
		return ovpn.Config{}, nil, fmt.Errorf("%s: tls-version-min: %w", c.Name, err)
	}
	if c.TLSVersionMax != "" {
		if tc.MaxVersion, err = tlsVersion(c.TLSVersionMax); err != nil {
			return ovpn.Config{}, nil, fmt.Errorf("%s: tls-version-max: %w", c.Name, err)
		}
	}
	applyTLSCiphers(tc, eng.Name(), c, log)
	newWrapper, err := wrapperFactory(c, server)
	if err != nil {
		return ovpn.Config{}, nil, err
	}
	ciphers, fallback, err := dataCiphers(c)
	if err != nil {
		return ovpn.Config{}, nil, err
	}
	comp := compress.Spec{CompLZO: c.CompLZO, Compress: c.Compress, Allow: c.AllowCompression}
	if err := comp.Validate(); err != nil {
		return ovpn.Config{}, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	proto, tlsRole := "UDPv4", "tls-client"
	switch {
	case tcp && server:
		proto = "TCPv4_SERVER"
	case tcp:
		proto = "TCPv4_CLIENT"
	}
	if server {
		tlsRole = "tls-server"
	}
	occ := fmt.Sprintf("V4,dev-type tun,link-mtu 1559,tun-mtu %d,proto %s,cipher %s,auth [null-digest],keysize 256,key-method 2,%s",
		c.TunMTU, proto, firstCipher(ciphers), tlsRole)
	if len(c.TLSAuth) > 0 && c.KeyDirection >= 0 {
		occ = strings.Replace(occ, ",auth", fmt.Sprintf(",keydir %d,auth", c.KeyDirection), 1)
	}
	cfg := ovpn.Config{
		Role:         role,
		TLS:          eng,
		TLSConfig:    tc,
		DataCiphers:  ciphers,
		Fallback:     fallback,
		Compression:  comp,
		DisableEKM:   c.KeyDerivation == "prf",
		Options:      occ,
		TLSTimeout:   c.TLSTimeout,
		HandWindow:   c.HandWindow,
		TranWindow:   c.TranWindow,
		RenegSec:     c.RenegSec,
		RenegBytes:   c.RenegBytes,
		RenegPackets: c.RenegPkts,
		Ping:         c.Ping,
		PingRestart:  c.PingRestart,
		PingExit:     c.PingExit,
		ReplayWindow: c.ReplayWindow,
		ReplayExpire: c.ReplayWindowTime,
		PeerID:       -1,
		Logger:       log,
	}
	if c.RenegSec == 0 {
		cfg.RenegSec = -1
	}
	return cfg, newWrapper, nil
}

func firstCipher(c []datachan.Cipher) string {
	if len(c) == 0 {
		return "AES-256-GCM"
	}
	return c[0].String()
}

func tlsVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.0", "1.1":
		// Go refuses TLS below 1.2 for OpenVPN peers; 1.2 is the floor.
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q", v)
}
