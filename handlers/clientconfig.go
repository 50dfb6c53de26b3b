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
	p.Logger = log

	eng, err := tlsengine.Lookup(engine)
	if err != nil {
		return p, err
	}
	tc := &tlsengine.Config{}
	cert, err := c.Certificate()
	if err != nil {
		return p, fmt.Errorf("%s: %w", c.Name, err)
	}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	opts, err := c.CertCheckOptions()
	if err != nil {
		return p, fmt.Errorf("%s: %w", c.Name, err)
	}
	verify := opts.VerifyPeerCertificate()
	tc.VerifyPeer = func(raw [][]byte) error {
		if err := verify(raw, nil); err != nil {
			return fmt.Errorf("certificate verification failed: %w", err)
		}
		return nil
	}
	if tc.MinVersion, err = tlsVersion(c.TLSVersionMin); err != nil {
		return p, fmt.Errorf("%s: tls-version-min: %w", c.Name, err)
	}
	applyTLSCiphers(tc, eng.Name(), &c.Common, log)
	if c.TLSVersionMinOrHighest && tc.MinVersion == tls.VersionTLS13 {
		// "or-highest": fall back to the highest version we support, which is 1.3.
		tc.MinVersion = tls.VersionTLS13
	}
	if c.TLSVersionMax != "" {
		if tc.MaxVersion, err = tlsVersion(c.TLSVersionMax); err != nil {
			return p, fmt.Errorf("%s: tls-version-max: %w", c.Name, err)
		}
	}

	switch {
	case len(c.TLSCrypt) > 0:
		k, err := controlwrap.ParseStaticKey(c.TLSCrypt)
		if err != nil {
			return p, fmt.Errorf("%s: tls-crypt %s: %w", c.Name, c.TLSCryptFile, err)
		}
		p.NewWrapper = func() (controlwrap.Wrapper, error) { return controlwrap.NewTLSCrypt(k, false) }
	case len(c.TLSAuth) > 0:
		k, err := controlwrap.ParseStaticKey(c.TLSAuth)
		if err != nil {
			return p, fmt.Errorf("%s: tls-auth %s: %w", c.Name, c.TLSAuthFile, err)
		}
		dir := controlwrap.DirNone
		switch c.KeyDirection {
		case 0:
			dir = controlwrap.Dir0
		case 1:
			dir = controlwrap.Dir1
		}
		digest := c.Auth
		if _, err := controlwrap.NewTLSAuth(k, dir, digest); err != nil {
			return p, fmt.Errorf("%s: tls-auth with auth %s: %w", c.Name, digest, err)
		}
		p.NewWrapper = func() (controlwrap.Wrapper, error) { return controlwrap.NewTLSAuth(k, dir, digest) }
	}

	var ciphers []datachan.Cipher
	for _, n := range c.DataCiphers {
		ci, err := datachan.ParseCipher(strings.TrimPrefix(n, "?"))
		if err != nil {
			if strings.HasPrefix(n, "?") {
				continue
			}
			return p, fmt.Errorf("%s: data-ciphers: %w", c.Name, err)
		}
		ciphers = append(ciphers, ci)
	}
	var fallback *datachan.Cipher
	if c.DataCiphersFallback != "" {
		ci, err := datachan.ParseCipher(c.DataCiphersFallback)
		if err != nil {
			return p, fmt.Errorf("%s: data-ciphers-fallback: %w", c.Name, err)
		}
		fallback = &ci
	}
	proto := "UDPv4"
	if len(p.Remotes) > 0 && p.Remotes[0].isTCP() {
		proto = "TCPv4_CLIENT"
	}
	occ := fmt.Sprintf("V4,dev-type tun,link-mtu 1559,tun-mtu %d,proto %s,cipher %s,auth [null-digest],keysize 256,key-method 2,tls-client",
		c.TunMTU, proto, firstCipher(ciphers))
	if len(c.TLSAuth) > 0 && c.KeyDirection >= 0 {
		occ = strings.Replace(occ, ",auth", fmt.Sprintf(",keydir %d,auth", c.KeyDirection), 1)
	}
	var extra []string
	for k, v := range c.Setenv {
		if strings.HasPrefix(k, "UV_") {
			extra = append(extra, k+"="+v)
		}
	}
	p.Session = ovpn.Config{
		Role:               ovpn.RoleClient,
		TLS:                eng,
		TLSConfig:          tc,
		DataCiphers:        ciphers,
		Fallback:           fallback,
		DisableEKM:         c.KeyDerivation == "prf",
		Compression:        compress.Spec{CompLZO: c.CompLZO, Compress: c.Compress, Allow: c.AllowCompression},
		Pull:               c.Pull,
		Options:            occ,
		PeerInfoExtra:      strings.Join(extra, "\n"),
		Username:           c.Username,
		Password:           c.Password,
		TLSTimeout:         c.TLSTimeout,
		HandWindow:         c.HandWindow,
		TranWindow:         c.TranWindow,
		RenegSec:           c.RenegSec,
		RenegBytes:         c.RenegBytes,
		RenegPackets:       c.RenegPkts,
		Ping:               c.Ping,
		PingRestart:        c.PingRestart,
		PingExit:           c.PingExit,
		ReplayWindow:       c.ReplayWindow,
		ReplayExpire:       c.ReplayWindowTime,
		ExplicitExitNotify: c.ExplicitExitNotify,
		Logger:             log,
	}
	if c.RenegSec == 0 {
		p.Session.RenegSec = -1
	}
	return p, nil
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
