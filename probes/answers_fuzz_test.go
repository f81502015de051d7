package probes

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/finding"
)

// checkResult holds what every probe result promises, whatever the network
// answered: a known status, a reason from the vocabulary, findings with
// one too.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	switch r.Status {
	case StatusPass, StatusWarn, StatusFail, StatusUnknown:
	default:
		t.Fatalf("status %q (%+v)", r.Status, r)
	}
	if !slices.Contains(finding.AllReasons, r.Reason) {
		t.Fatalf("reason %q not in the vocabulary (%+v)", r.Reason, r)
	}
	for _, f := range r.Findings {
		if !slices.Contains(finding.AllReasons, f.Reason) || f.Kind == "" {
			t.Fatalf("finding %+v", f)
		}
	}
}

// dnsPipeResolver answers every query over a pipe with the query's ID and
// question, then header (flags and counts, 10 bytes) and body from the
// fuzzer: the parser gets past the ID and question checks and reads the
// hostile answer records.
func dnsPipeResolver(header, body []byte) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			server.SetDeadline(time.Now().Add(2 * time.Second))
			var n [2]byte
			if _, err := io.ReadFull(server, n[:]); err != nil {
				return
			}
			q := make([]byte, binary.BigEndian.Uint16(n[:]))
			if _, err := io.ReadFull(server, q); err != nil || len(q) < 12 {
				return
			}
			end := 12
			for end < len(q) && q[end] != 0 {
				end += 1 + int(q[end])
			}
			end = min(end+5, len(q)) // root label, type, class
			var h [10]byte
			copy(h[:], header)
			resp := append(append(append(q[:2:2], h[:]...), q[12:end]...), body...)
			resp = resp[:min(len(resp), 65535)]
			binary.BigEndian.PutUint16(n[:], uint16(len(resp)))
			server.Write(append(n[:], resp...))
		}()
		return client, nil
	}}
}

// FuzzDNSAnswer feeds hostile DNS answers to the DNS probe: no panic, an
// answer within the deadline, a result in the vocabulary.
func FuzzDNSAnswer(f *testing.F) {
	a := []byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 170, 114, 52, 10}
	f.Add([]byte{0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, a)                                                                           // one A
	f.Add([]byte{0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, []byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 0, 0, 0, 0})               // sinkhole
	f.Add([]byte{0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0}, []byte{})                                                                    // NXDOMAIN
	f.Add([]byte{0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0}, []byte{})                                                                    // SERVFAIL
	f.Add([]byte{0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0}, append([]byte{0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x0c}, a...)) // CNAME loop
	f.Add([]byte{0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, []byte{})                                                                    // truncated
	f.Fuzz(func(t *testing.T, header, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		env := Env{Resolver: dnsPipeResolver(header, body), Config: &config.ProbesConfig{DNS: config.DNSProbeConfig{System: true}}}
		checkResult(t, ProbeDNS(ctx, Target{Label: "zoom.us", Host: "zoom.us."}, env))
	})
}

// FuzzNTPAnswer feeds hostile NTP answers (UDP on loopback) to the NTP
// probe. The server copies the request's transmit time into the origin
// field so the client's check passes and the rest is read.
func FuzzNTPAnswer(f *testing.F) {
	good := make([]byte, 48)
	good[0], good[1], good[2], good[3] = 0x24, 2, 6, 0xec
	f.Add(good, true)
	kod := append([]byte(nil), good...)
	kod[1] = 0
	copy(kod[12:], "RATE")
	f.Add(kod, true)
	f.Add([]byte{0x1c}, false)
	f.Add(make([]byte, 200), true)
	f.Fuzz(func(t *testing.T, answer []byte, fixOrigin bool) {
		r := probeNTPAnswer(t, answer, fixOrigin)
		checkResult(t, r)
		if r.Success && !r.HasValue {
			t.Fatalf("success without an offset: %+v", r)
		}
	})
}

// probeNTPAnswer runs the NTP probe against a loopback server that sends
// answer once; fixOrigin copies the request's transmit time into it.
func probeNTPAnswer(t *testing.T, answer []byte, fixOrigin bool) Result {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		out := append([]byte(nil), answer...)
		if fixOrigin && n >= 48 && len(out) >= 32 {
			copy(out[24:32], buf[40:48])
		}
		c.WriteToUDPAddrPort(out, from)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return ProbeNTP(ctx, Target{Label: "ntp", Host: "127.0.0.1", Address: c.LocalAddr().String()}, Env{})
}

// Found by FuzzNTPAnswer: a poll exponent of -128 made beevik/ntp shift by
// a negative amount and panic, which took the daemon down. The server
// answered, so the check warns; it does not say the server is unreachable.
func TestNTPMalformedAnswer(t *testing.T) {
	answer := []byte(strings.Repeat("0", 48))                        // non-zero times
	answer[0], answer[1], answer[2], answer[3] = 0x24, 2, 0x80, 0xec // poll -128
	r := probeNTPAnswer(t, answer, true)
	if r.Status != StatusWarn || r.Reason != finding.ReasonUnknown || len(r.Findings) != 0 {
		t.Fatalf("status %s reason %s findings %v: %s", r.Status, r.Reason, r.Findings, r.Summary)
	}
	if !strings.Contains(fmt.Sprint(r.Evidence["invalid"]), "malformed NTP answer") {
		t.Errorf("evidence %v", r.Evidence)
	}
}

// FuzzTLSAnswer feeds hostile bytes as a server's answer to the TLS
// probe's ClientHello (TCP on loopback): no panic, no hang, a reason from
// the vocabulary.
func FuzzTLSAnswer(f *testing.F) {
	f.Add([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28})                // handshake_failure alert
	f.Add([]byte{0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00})    // empty ServerHello
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")) // not TLS
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff})                            // record longer than sent
	f.Add([]byte{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	answers := make(chan []byte)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			answer := <-answers
			c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4096)
			c.Read(buf) // the ClientHello
			c.Write(answer)
			c.Close()
		}
	}()
	f.Fuzz(func(t *testing.T, answer []byte) {
		go func() { answers <- answer }()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r := ProbeTLS12(ctx, Target{Label: "zoom.us:443", Host: "zoom.us", Port: 443, Address: l.Addr().String()}, Env{})
		checkResult(t, r)
		if r.Success {
			t.Fatalf("a handshake succeeded on %q", answer)
		}
	})
}
