package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxLineLength is the longest configuration line accepted, in bytes.
const MaxLineLength = 64 * 1024

// Tokenizer errors (wrapped in *Error by the parsers).
var (
	ErrUnterminatedQuote = errors.New("no closing quotation mark")
	ErrBadBackslash      = errors.New(`bad backslash ('\') usage: outside single quotes only \\, \", \<space> and \<tab> are allowed; use double backslashes in Windows paths, e.g. "c:\\openvpn\\ta.key"`)
)

// Tokenize splits one configuration line into tokens the way OpenVPN 2.6
// does (behaviour verified against openvpn 2.6.14):
//
//   - Tokens are separated by spaces and tabs (and any other ASCII
//     whitespace).
//   - A token that begins with a double quote extends to the next unescaped
//     double quote; it may contain whitespace. A token that begins with a
//     single quote extends to the next single quote, and everything in
//     between is literal (no escapes). The closing quote also ends the
//     token, so `"a b"c` yields two tokens, "a b" and "c". An empty quoted
//     token (two adjacent quotes) yields an empty string. A missing closing quote is
//     ErrUnterminatedQuote.
//   - Quote characters in the middle of a token are ordinary characters:
//     `a"b` is the token a"b.
//   - Outside single quotes, a backslash escapes the next character, which
//     must be a backslash, a double quote, a space or a tab; any other use
//     is ErrBadBackslash (OpenVPN rejects it too).
//   - A '#' or ';' that begins a token (outside quotes, not escaped) starts
//     a comment that runs to the end of the line. This covers whole-line
//     comments (`# text`, `  ; text`) and trailing comments after
//     whitespace (`proto udp # text`). Inside a token the characters are
//     literal: `a#b` is one token. (The OpenVPN manual only documents
//     comments "in the first column", but OpenVPN accepts both forms.)
//
// Tokenize does not strip a leading "--" from the directive; the
// configuration parsers do. Tokenize is also suitable for the option
// strings of a PUSH_REPLY message.
func Tokenize(line string) ([]string, error) {
	var (
		toks []string
		cur  strings.Builder
		in   bool // inside a token
	)
	i := 0
	for i < len(line) {
		c := line[i]
		if !in {
			switch {
			case isSpace(c):
				i++
				continue
			case c == '#' || c == ';':
				return toks, nil
			case c == '"' || c == '\'':
				tok, n, err := quoted(line[i:])
				if err != nil {
					return nil, err
				}
				toks = append(toks, tok)
				i += n
				continue
			}
			in = true
			cur.Reset()
		}
		switch {
		case isSpace(c):
			toks = append(toks, cur.String())
			in = false
			i++
		case c == '\\':
			if i+1 >= len(line) || !escapable(line[i+1]) {
				return nil, ErrBadBackslash
			}
			cur.WriteByte(line[i+1])
			i += 2
		default:
			cur.WriteByte(c)
			i++
		}
	}
	if in {
		toks = append(toks, cur.String())
	}
	return toks, nil
}

// quoted reads a quoted token at the start of s and returns it with the
// number of bytes consumed (including both quotes).
func quoted(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && q == '"':
			if i+1 >= len(s) || !escapable(s[i+1]) {
				return "", 0, ErrBadBackslash
			}
			b.WriteByte(s[i+1])
			i++
		default:
			b.WriteByte(c)
		}
	}
	if q == '"' {
		return "", 0, fmt.Errorf("%w (\")", ErrUnterminatedQuote)
	}
	return "", 0, fmt.Errorf("%w (')", ErrUnterminatedQuote)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func escapable(c byte) bool { return c == '\\' || c == '"' || c == ' ' || c == '\t' }

// InlineTags lists the directives that may be given as inline blocks
// (<tag> ... </tag>) in a configuration file.
var InlineTags = []string{
	"ca", "cert", "key", "tls-crypt", "tls-auth", "auth-user-pass",
	"extra-certs", "tls-crypt-v2", "crl-verify",
}

// Directive is one configuration directive as produced by Lex.
type Directive struct {
	// File and Line locate the directive (for an inline block: its opening tag).
	File string
	Line int
	// Name is the directive name without a leading "--".
	Name string
	// Args are the remaining tokens of the line (nil for inline blocks).
	Args []string
	// Inline is true for an inline block <Name>...</Name>.
	Inline bool
	// Body is an inline block's content: the lines between the tags,
	// verbatim, each terminated by "\n" (a "\r\n" ending is kept as is).
	Body []byte
}

// Lex reads an OpenVPN-style configuration and returns its directives in
// order. name is used in error locations. Blank and comment lines are
// skipped; a UTF-8 byte-order mark at the start is ignored. Inline blocks
// are recognised for the tags in InlineTags; an unknown <tag> or a missing
// closing tag is an error located at the opening tag. Errors are *Error.
func Lex(r io.Reader, name string) ([]Directive, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLength)
	sc.Split(scanLinesKeepCR)
	var (
		out    []Directive
		lineNo int
		block  *Directive
		body   bytes.Buffer
	)
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimSuffix(raw, "\r")
		if block != nil {
			if t := strings.TrimSpace(line); strings.HasPrefix(t, "</") {
				toks, err := Tokenize(line)
				if err == nil && len(toks) > 0 && toks[0] == "</"+block.Name+">" {
					if len(toks) > 1 {
						return nil, &Error{File: name, Line: lineNo, Directive: block.Name, Err: fmt.Errorf("unexpected text after </%s>", block.Name)}
					}
					block.Body = bytes.Clone(body.Bytes())
					out = append(out, *block)
					block = nil
					continue
				}
			}
			body.WriteString(raw)
			body.WriteByte('\n')
			continue
		}
		toks, err := Tokenize(line)
		if err != nil {
			return nil, &Error{File: name, Line: lineNo, Err: err}
		}
		if len(toks) == 0 {
			continue
		}
		first := toks[0]
		if len(first) > 2 && first[0] == '<' && first[len(first)-1] == '>' {
			tag := first[1 : len(first)-1]
			if strings.HasPrefix(tag, "/") {
				return nil, &Error{File: name, Line: lineNo, Directive: tag[1:], Err: fmt.Errorf("closing tag %s without opening tag", first)}
			}
			if !isInlineTag(tag) {
				return nil, &Error{File: name, Line: lineNo, Directive: tag, Err: fmt.Errorf("inline block <%s> is not supported", tag)}
			}
			if len(toks) > 1 {
				return nil, &Error{File: name, Line: lineNo, Directive: tag, Err: fmt.Errorf("unexpected text after <%s>", tag)}
			}
			block = &Directive{File: name, Line: lineNo, Name: tag, Inline: true}
			body.Reset()
			continue
		}
		d := Directive{File: name, Line: lineNo, Name: strings.TrimPrefix(first, "--"), Args: toks[1:]}
		if d.Name == "" {
			return nil, &Error{File: name, Line: lineNo, Directive: first, Err: errors.New("empty directive name")}
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &Error{File: name, Line: lineNo + 1, Err: fmt.Errorf("line longer than %d bytes", MaxLineLength)}
		}
		return nil, &Error{File: name, Line: lineNo, Err: fmt.Errorf("read: %w", err)}
	}
	if block != nil {
		return nil, &Error{File: name, Line: block.Line, Directive: block.Name, Err: fmt.Errorf("inline block <%s> is not terminated by </%s>", block.Name, block.Name)}
	}
	return out, nil
}

func isInlineTag(tag string) bool {
	for _, t := range InlineTags {
		if t == tag {
			return true
		}
	}
	return false
}

// scanLinesKeepCR is bufio.ScanLines without the removal of a trailing
// '\r', so inline bodies keep their exact bytes.
func scanLinesKeepCR(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// LexFile reads and splits the config file at path into directives.
func LexFile(path string) ([]Directive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Lex(f, path)
}
