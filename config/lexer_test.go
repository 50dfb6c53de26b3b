package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr error
	}{
		{in: "", want: nil},
		{in: "   \t ", want: nil},
		{in: "remote a 1194", want: []string{"remote", "a", "1194"}},
		{in: "  remote\ta  1194  ", want: []string{"remote", "a", "1194"}},
		{in: "# comment", want: nil},
		{in: "; comment", want: nil},
		{in: "   # indented comment", want: nil},
		{in: "\t; tab comment", want: nil},
		{in: "remote a 1194 udp #c", want: []string{"remote", "a", "1194", "udp"}},
		{in: "remote a 1194 ;c d", want: []string{"remote", "a", "1194"}},
		{in: "remote a5#x 1198", want: []string{"remote", "a5#x", "1198"}},
		{in: "remote abc 1194 udp;c", want: []string{"remote", "abc", "1194", "udp;c"}},
		{in: `remote 'a2 x' 1195`, want: []string{"remote", "a2 x", "1195"}},
		{in: `remote "a3\"q\\b" 1196`, want: []string{"remote", `a3"q\b`, "1196"}},
		{in: `remote a4\ b 1197`, want: []string{"remote", "a4 b", "1197"}},
		{in: "remote a\\\tb", want: []string{"remote", "a\tb"}},
		{in: `remote a\"b`, want: []string{"remote", `a"b`}},
		{in: `remote "a\ b"`, want: []string{"remote", "a b"}},
		{in: `remote 'a6\n' 1199`, want: []string{"remote", `a6\n`, "1199"}},
		{in: `remote 'q\'`, want: []string{"remote", `q\`}},
		{in: `remote "" 1`, want: []string{"remote", "", "1"}},
		{in: `remote '' 1`, want: []string{"remote", "", "1"}},
		{in: `remote a"b c"d 1200`, want: []string{"remote", `a"b`, `c"d`, "1200"}},
		{in: `remote a'b c'd`, want: []string{"remote", "a'b", "c'd"}},
		{in: `remote "x"y 1`, want: []string{"remote", "x", "y", "1"}},
		{in: `remote "a b"c d`, want: []string{"remote", "a b", "c", "d"}},
		{in: `setenv X "a # b"`, want: []string{"setenv", "X", "a # b"}},
		{in: `remote "a#b" 1199 ;c`, want: []string{"remote", "a#b", "1199"}},
		{in: `a "#"`, want: []string{"a", "#"}},
		{in: `--remote x`, want: []string{"--remote", "x"}},
		{in: `remote "abc 1194`, wantErr: ErrUnterminatedQuote},
		{in: `remote 'abc`, wantErr: ErrUnterminatedQuote},
		{in: `remote "a\nb"`, wantErr: ErrBadBackslash},
		{in: `remote a\b`, wantErr: ErrBadBackslash},
		{in: `remote a\#b`, wantErr: ErrBadBackslash},
		{in: `remote a\`, wantErr: ErrBadBackslash},
		{in: `remote "a\`, wantErr: ErrBadBackslash},
		{in: `secret "c:\\OpenVPN\\secret.key"`, want: []string{"secret", `c:\OpenVPN\secret.key`}},
		{in: "ca\xffx", want: []string{"ca\xffx"}},
	}
	for _, tt := range tests {
		got, err := Tokenize(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Tokenize(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Tokenize(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLex(t *testing.T) {
	in := "\ufeff# header\r\n" +
		"--client\r\n" +
		"\n" +
		"<ca>\r\n" +
		"-----BEGIN CERTIFICATE-----\r\n" +
		"# not a comment\n" +
		"  </cert>\n" +
		"</ca>\n" +
		"remote 'x y' 1 ; c\n" +
		"  <tls-crypt>  \n" +
		"a\n" +
		"  </tls-crypt>   \n"
	ds, err := Lex(strings.NewReader(in), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []Directive{
		{File: "t.conf", Line: 2, Name: "client", Args: []string{}},
		{File: "t.conf", Line: 4, Name: "ca", Inline: true, Body: []byte("-----BEGIN CERTIFICATE-----\r\n# not a comment\n  </cert>\n")},
		{File: "t.conf", Line: 9, Name: "remote", Args: []string{"x y", "1"}},
		{File: "t.conf", Line: 10, Name: "tls-crypt", Inline: true, Body: []byte("a\n")},
	}
	if !reflect.DeepEqual(ds, want) {
		t.Errorf("Lex =\n%#v\nwant\n%#v", ds, want)
	}
}

func TestLexErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"client\n<ca>\nabc\n", "t.conf:2: ca: inline block <ca> is not terminated by </ca>"},
		{"<ca>\nabc\n</cert>\n", "t.conf:1: ca: inline block <ca> is not terminated by </ca>"},
		{"<foo>\n</foo>\n", "t.conf:1: foo: inline block <foo> is not supported"},
		{"</ca>\n", "t.conf:1: ca: closing tag </ca> without opening tag"},
		{"<ca> x\n</ca>\n", "t.conf:1: ca: unexpected text after <ca>"},
		{"<ca>\n</ca> x\n", "t.conf:2: ca: unexpected text after </ca>"},
		{"a\nremote \"x\n", "t.conf:2: no closing quotation mark (\")"},
		{"-- x\n", "t.conf:1: --: empty directive name"},
		{"x\n" + strings.Repeat("a", MaxLineLength+1) + "\n", "t.conf:2: line longer than 65536 bytes"},
	}
	for _, tt := range tests {
		_, err := Lex(strings.NewReader(tt.in), "t.conf")
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("Lex(%q) error %v is not *Error", tt.in, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Lex(%q) error = %q, want %q", tt.in, err, tt.want)
		}
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"remote a 1194", `a "b c" 'd e' f\ g # x`, `"`, `'`, `\`, `a"b`, "#", "x;y ;z", `"\\\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := Tokenize(s)
		if err != nil {
			if toks != nil {
				t.Fatalf("tokens %q with error %v", toks, err)
			}
			return
		}
		for _, tok := range toks {
			if len(tok) > len(s) {
				t.Fatalf("token %q longer than input %q", tok, s)
			}
		}
	})
}
