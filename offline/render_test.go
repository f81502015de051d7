package offline

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// A proxy's answer is hostile text: terminal escapes (retitle, clear
// screen, CSI in C1, bidi override) and a line break that would forge a
// line of the report. analyze's text output shows it escaped.
func TestWriteTextEscapesNetworkText(t *testing.T) {
	g := testgen.New(7, time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	c := g.TCPConn(netip.MustParseAddrPort("192.168.10.20:40001"), netip.MustParseAddrPort("192.168.10.3:3128"), testgen.TCPOptions{})
	c.Send(testgen.ClientToServer, []byte("CONNECT zoomfrn99mmr.zoom.us:443 HTTP/1.1\r\nHost: zoomfrn99mmr.zoom.us:443\r\n\r\n"))
	hostile := "squid/5.7 \x1b]0;pwned\x07\x1b[2J\u009b31m\u202eFAKE"
	c.Send(testgen.ServerToClient, []byte("HTTP/1.1 403 Forbidden\r\nServer: "+hostile+"\r\nVia: 1.1 proxy\x1b[8m (hidden)\r\nContent-Length: 0\r\n\r\n"))
	c.CloseFrom(testgen.ServerToClient)
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	res := analyze(t, nil, writeCapture(t, g.Packets(), testgen.FormatPCAP))
	if len(res.Findings) == 0 {
		t.Fatal("no finding on the proxy's refusal")
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, r := range text {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x202e) {
			t.Fatalf("%U reaches the terminal raw:\n%s", r, text)
		}
	}
	for _, want := range []string{`server:`, `squid/5.7 \x1b]0;pwned\x07\x1b[2J\u009b31m\u202eFAKE`, `\x1b[8m (hidden)`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}
