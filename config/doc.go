// Package config parses OpenVPN 2.6 style configuration files.
//
// Parsing happens in two layers. Lex turns a file into a list of Directive
// values (file, line, name, arguments) plus inline blocks such as
// <ca>...</ca>, using Tokenize for OpenVPN's quoting rules. A per-mode
// table of handlers then interprets the directives: ParseClient fills a
// Client today, and a Server can be added later with its own table on the
// same machinery (the handler table and dispatcher are generic over the
// configuration type).
//
// # Differences from OpenVPN
//
//   - Relative file names (ca, cert, key, tls-auth, status, ...) are
//     resolved against the configuration file's directory, not the working
//     directory (OpenVPN uses the working directory, see its --cd).
//   - Referenced files are read and checked while parsing: certificates
//     must parse, cert and key must match, static key files must contain the
//     "-----BEGIN OpenVPN Static key V1-----" marker. Errors name the
//     configuration file and line and the referenced file.
//   - weft is not interactive: auth-user-pass needs a file or inline block
//     holding both username and password, and encrypted private keys are
//     rejected.
//   - Scripts (up, down) are recorded but never run; daemon is ignored with
//     a warning (weft always runs in the foreground).
//   - Unsupported features are errors wrapping ErrUnsupported: tap devices,
//     fragment, tls-crypt-v2, static-key mode (secret), CBC ciphers, dev null.
//   - crl-verify FILE is read and checked (Client.CRLVerify); the caller
//     passes it to certcheck (ParseCRLs, Options.CRLs). The "dir" form is
//     not supported.
//
// # Unknown directives
//
// An unknown directive is an *Error wrapping ErrUnknownDirective, except
// when it is named by an earlier ignore-unknown-option directive, prefixed
// with "setenv opt", or follows "setenv FORWARD_COMPATIBLE 1"; those are
// skipped and reported in Client.Warnings. Independently of that, the
// server-only directive dh is ignored with a warning, as OpenVPN does in
// client mode. Server directives such as tls-server, server or push are
// errors with a message saying they belong to a server configuration.
// Directives that are recognised but invalid are always errors.
package config
