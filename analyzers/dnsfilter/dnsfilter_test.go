package dnsfilter_test

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/analyzers/dnsfilter"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/reachtest"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// answer builds a real DNS response with golang.org/x/net/dns/dnsmessage.
func answer(t testing.TB, name string, rcode dnsmessage.RCode, addrs ...string) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x4242, Response: true, RecursionDesired: true, RecursionAvailable: true, RCode: rcode})
	b.EnableCompression()
	qt := dnsmessage.TypeA
	if len(addrs) > 0 && strings.Contains(addrs[0], ":") {
		qt = dnsmessage.TypeAAAA
	}
	n := dnsmessage.MustNewName(name + ".")
	must(t, b.StartQuestions())
	must(t, b.Question(dnsmessage.Question{Name: n, Type: qt, Class: dnsmessage.ClassINET}))
	must(t, b.StartAnswers())
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		h := dnsmessage.ResourceHeader{Name: n, Class: dnsmessage.ClassINET, TTL: 60}
		if a.Is4() {
			must(t, b.AResource(h, dnsmessage.AResource{A: a.As4()}))
		} else {
			must(t, b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: a.As16()}))
		}
	}
	msg, err := b.Finish()
	must(t, err)
	return msg
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func exchange(t testing.TB, port int, resp []byte, tcp bool) []decode.Packet {
	if tcp {
		c := reachtest.NewTCP(fmt.Sprintf("192.168.10.20:%d", port), "192.168.10.1:53")
		framed := append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)
		return []decode.Packet{c.SYN(t0), c.SYNACK(t0.Add(time.Millisecond)), c.ACK(t0.Add(2*time.Millisecond), true),
			c.Data(t0.Add(3*time.Millisecond), true, []byte{0, 30}), c.Data(t0.Add(5*time.Millisecond), false, framed)}
	}
	c := reachtest.NewUDP(fmt.Sprintf("192.168.10.20:%d", port), "192.168.10.1:53")
	return []decode.Packet{c.Data(t0, true, make([]byte, 30)), c.Data(t0.Add(2*time.Millisecond), false, resp)}
}

func summary(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s/%s %s name=%v answer=%v rcode=%v", f.Kind, f.Reason, f.Service, f.Evidence["name"], f.Evidence["answer"], f.Evidence["rcode"]))
	}
	sort.Strings(out)
	return out
}

func TestVerdicts(t *testing.T) {
	cfg := config.Default()
	cfg.Reach.SinkholePrefixes = []netip.Prefix{netip.MustParsePrefix("146.112.61.104/32")}
	cfg.Reach.DNSPrivateAllowed = []string{"zoomonprem.com"}
	tests := []struct {
		name string
		resp []byte
		tcp  bool
		want string
	}{
		{"NXDOMAIN", answer(t, "zoom.us", dnsmessage.RCodeNameError), false, "dns_filtered/dns_nxdomain web name=zoom.us answer=<nil> rcode=NXDOMAIN"},
		{"REFUSED", answer(t, "zoomfrn99mmr.zoom.us", dnsmessage.RCodeRefused), false, "dns_filtered/dns_refused media_router name=zoomfrn99mmr.zoom.us answer=<nil> rcode=REFUSED"},
		{"SERVFAIL", answer(t, "zoomam104zc.zoom.us", dnsmessage.RCodeServerFailure), false, "dns_filtered/dns_servfail zone_controller name=zoomam104zc.zoom.us answer=<nil> rcode=SERVFAIL"},
		{"0.0.0.0", answer(t, "www.zoom.us", 0, "0.0.0.0"), false, "dns_filtered/dns_sinkhole web name=www.zoom.us answer=0.0.0.0 rcode=NOERROR"},
		{"::", answer(t, "zoom.us", 0, "::"), false, "dns_filtered/dns_sinkhole web name=zoom.us answer=:: rcode=NOERROR"},
		{"loopback", answer(t, "zoom.com", 0, "127.0.0.1"), false, "dns_filtered/dns_loopback web name=zoom.com answer=127.0.0.1 rcode=NOERROR"},
		{"private", answer(t, "zoom.us", 0, "10.10.0.5"), false, "dns_filtered/dns_private_address web name=zoom.us answer=10.10.0.5 rcode=NOERROR"},
		{"CGNAT", answer(t, "zoom.us", 0, "100.64.1.1"), false, "dns_filtered/dns_private_address web name=zoom.us answer=100.64.1.1 rcode=NOERROR"},
		{"ULA", answer(t, "zoom.us", 0, "fd00::1"), false, "dns_filtered/dns_private_address web name=zoom.us answer=fd00::1 rcode=NOERROR"},
		{"configured sinkhole (Umbrella block page)", answer(t, "zoom.us", 0, "146.112.61.104"), false, "dns_filtered/dns_sinkhole web name=zoom.us answer=146.112.61.104 rcode=NOERROR"},
		{"over TCP", answer(t, "zoom.us", dnsmessage.RCodeNameError), true, "dns_filtered/dns_nxdomain web name=zoom.us answer=<nil> rcode=NXDOMAIN"},
		{"genuine answer", answer(t, "zoom.us", 0, "170.114.52.2"), false, ""},
		{"private allowed for on-prem", answer(t, "mc.zoomonprem.com", 0, "10.1.1.1"), false, ""},
		{"not a Zoom name", answer(t, "example.org", dnsmessage.RCodeNameError), false, ""},
		{"look-alike name", answer(t, "zoom.us.evil.example", 0, "0.0.0.0"), false, ""},
		{"truncated junk", []byte{0x42, 0x42, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0, 4, 'z'}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &reachtest.Sink{}
			a := dnsfilter.New(cfg, 0, sink)
			h := reachtest.NewHarness(a)
			h.Feed(exchange(t, 40001, tc.resp, tc.tcp)...)
			got := strings.Join(summary(sink.All()), "\n")
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			if tc.want != "" {
				f := sink.All()[0]
				reason := string(f.Reason)
				if v := testutil.ToFloat64(a.Collectors()[0].(*prometheus.CounterVec).WithLabelValues(reason)); v != 1 {
					t.Fatalf("dns_filtered_total{%s} = %v", reason, v)
				}
				if f.UserSees == "" || f.Remediation == "" || f.Flow == nil || f.Flow.ServerPort != 53 {
					t.Fatalf("incomplete finding %+v", f)
				}
			}
		})
	}
}

func TestRepeatsCountedButReportedOnce(t *testing.T) {
	sink := &reachtest.Sink{}
	a := dnsfilter.New(config.Default(), 0, sink)
	h := reachtest.NewHarness(a)
	resp := answer(t, "zoom.us", dnsmessage.RCodeNameError)
	for i := range 5 {
		ps := exchange(t, 40001+i, resp, false)
		for j := range ps {
			ps[j].Time = ps[j].Time.Add(time.Duration(i) * time.Minute)
		}
		h.Feed(ps...)
	}
	if n := len(sink.All()); n != 1 {
		t.Fatalf("%d findings, want 1 within dns_repeat_interval", n)
	}
	if v := testutil.ToFloat64(a.Collectors()[0].(*prometheus.CounterVec).WithLabelValues("dns_nxdomain")); v != 5 {
		t.Fatalf("counted %v, want 5", v)
	}
}

func BenchmarkAnswer(b *testing.B) {
	a := dnsfilter.New(config.Default(), 0, &reachtest.Sink{})
	h := reachtest.NewHarness(a)
	ps := exchange(b, 40001, answer(b, "zoomfrn99mmr.zoom.us", 0, "170.114.52.2", "170.114.52.3"), false)
	h.Feed(ps...)
	p := ps[1]
	f, d := h.Table.Find(p.Proto, p.Src, p.Dst, p.SrcPort, p.DstPort)
	b.ReportAllocs()
	for b.Loop() {
		a.Packet(f, &p, d)
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add(answer(f, "zoom.us", 0, "0.0.0.0"), false)
	f.Add(answer(f, "zoomfrn99mmr.zoom.us", dnsmessage.RCodeNameError), true)
	f.Add(answer(f, "a.zoom.us", 0, "fd00::1", "::1"), false)
	f.Fuzz(func(t *testing.T, resp []byte, tcp bool) {
		sink := &reachtest.Sink{}
		a := dnsfilter.New(config.Default(), 0, sink)
		h := reachtest.NewHarness(a)
		h.Feed(exchange(t, 40001, resp, tcp)...)
		if len(sink.All()) > 1 {
			t.Fatal("more than one finding for one answer")
		}
	})
}
