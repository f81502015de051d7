package safetext

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"zoom.us":                     "zoom.us",
		`C:\path "quoted" ünïcødé 日本`: `C:\path "quoted" ünïcødé 日本`,
		"evil\x1b]0;pwned\x07\x1b[2J": `evil\x1b]0;pwned\x07\x1b[2J`,
		"line1\nFAKE: ok\r\n\tx":      `line1\nFAKE: ok\r\n\tx`,
		"csi\u009b31m":                `csi\u009b31m`,
		"abc\u202edcba":               `abc\u202edcba`,
		"sep\u2028x":                  `sep\u2028x`,
		"bad\xff\xfeutf8":             `bad\xff\xfeutf8`,
		"nul\x00del\x7f":              `nul\x00del\x7f`,
		"":                            "",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("evil\x1b[2J\nx\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unsafeRune(r, utf8.RuneLen(r)) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, out, r)
			}
		}
	})
}
