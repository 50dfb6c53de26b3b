// Package config parses OpenVPN 2.6 style configuration files.
//
// Parsing happens in two layers. Lex turns a file into a list of Directive
// values (file, line, name, arguments) plus inline blocks such as
// <ca>...</ca>, using Tokenize for OpenVPN's quoting rules. A per-mode
// table of handlers then interprets the directives: ParseClient fills a
// Client and ParseServer a Server. The directives both modes share (TLS
// credentials, control-channel keys, data ciphers, TLS and timer settings,
// device, compression, logging, ...) are handled once, into the Common
// struct that Client and Server embed; their handler table is merged into
// each mode's table, and a mode may override a shared directive where its
// meaning differs (keepalive, route, topology and remote-cert-tls on a
// server).
//
// # Differences from OpenVPN
//
//   - Relative file names (ca, cert, key, tls-auth, status,
//     client-config-dir, ...) are resolved against the configuration file's
//     directory, not the working directory (OpenVPN uses the working
//     directory, see its --cd).
//   - Referenced files are read and checked while parsing: certificates
//     must parse, cert and key must match, static key files must contain the
//     "-----BEGIN OpenVPN Static key V1-----" marker. Errors name the
//     configuration file and line and the referenced file.
//   - weft is not interactive: auth-user-pass needs a file or inline block
//     holding both username and password, and encrypted private keys are
//     rejected.
//   - Scripts (up, down, auth-user-pass-verify) are recorded but never run;
//     daemon is ignored with a warning (weft always runs in the foreground).
//   - Unsupported features are errors wrapping ErrUnsupported: tap devices,
//     fragment, tls-crypt-v2, static-key mode (secret), CBC ciphers, dev null;
//     on a server also mode p2p, topology p2p and ifconfig-ipv6-pool.
//   - crl-verify FILE is read and checked (Common.CRLVerify); the caller
//     passes it to certcheck (ParseCRLs, Options.CRLs). The "dir" form is
//     not supported.
//   - A server needs the server and/or server-ipv6 helper directive; manual
//     ifconfig setups are not supported. local must be an IP address (host
//     names are not resolved).
//
// # weft directives
//
//   - key-derivation prf|tls-ekm (both modes): how data-channel keys are
//     derived; tls-ekm (default) uses TLS keying-material export when the
//     peer supports it, prf always uses OpenVPN's TLS PRF.
//   - tls-engine go|openssl (both modes): the TLS implementation.
//   - data-pipeline yes|no (both modes, default no): split each data direction
//     over two goroutines (device read | encrypt and send; receive and decrypt
//     | device write). Off by default: on 2 cores shared by both tunnel ends
//     the hand-off cost more than the overlap gained (see docs/design.md).
//   - listen PROTO HOST:PORT (server, repeatable): a listener; PROTO is udp,
//     udp4, udp6, tcp, tcp4 or tcp6 and HOST an IPv4 address, [IPv6] or *.
//     Without listen, proto/local/port give one listener as in OpenVPN.
//   - userspace, socks-listen HOST:PORT, forward PROTO LISTEN DEST and
//     reverse-forward PROTO LISTEN DEST (client): the in-process network
//     stack mode.
//
// # Unknown directives
//
// An unknown directive is an *Error wrapping ErrUnknownDirective, except
// when it is named by an earlier ignore-unknown-option directive, prefixed
// with "setenv opt", or follows "setenv FORWARD_COMPATIBLE 1"; those are
// skipped and reported in Common.Warnings. Independently of that, the
// server-only directive dh is ignored with a warning in a client
// configuration, as OpenVPN does. Directives of the other mode (tls-server,
// server or push in a client; remote, client or pull in a server) and
// client-config-dir directives in a main configuration (iroute,
// ifconfig-push, ...) are errors whose message says where they belong.
// Directives that are recognised but invalid are always errors.
package config
