package dns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

type rr struct {
	name   string
	typ    dnsmessage.Type
	ttl    uint32
	addr   string // A / AAAA
	target string // CNAME
}

// build makes a wire message with dnsmessage.Builder, with name compression on.
func build(t testing.TB, h dnsmessage.Header, questions []dnsmessage.Question, answers []rr, authSOA bool) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.StartQuestions())
	for _, q := range questions {
		must(b.Question(q))
	}
	must(b.StartAnswers())
	for _, a := range answers {
		hdr := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(a.name), Class: dnsmessage.ClassINET, TTL: a.ttl}
		switch a.typ {
		case dnsmessage.TypeA:
			must(b.AResource(hdr, dnsmessage.AResource{A: netip.MustParseAddr(a.addr).As4()}))
		case dnsmessage.TypeAAAA:
			must(b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(a.addr).As16()}))
		case dnsmessage.TypeCNAME:
			must(b.CNAMEResource(hdr, dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(a.target)}))
		case dnsmessage.TypeTXT:
			must(b.TXTResource(hdr, dnsmessage.TXTResource{TXT: []string{"v=spf1 -all"}}))
		case dnsmessage.TypeMX:
			must(b.MXResource(hdr, dnsmessage.MXResource{Pref: 10, MX: dnsmessage.MustNewName(a.target)}))
		default:
			t.Fatalf("unsupported test type %v", a.typ)
		}
	}
	if authSOA {
		must(b.StartAuthorities())
		must(b.SOAResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("zoom.us."), Class: dnsmessage.ClassINET, TTL: 900},
			dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns1.zoom.us."), MBox: dnsmessage.MustNewName("hostmaster.zoom.us."), Serial: 1, Refresh: 2, Retry: 3, Expire: 4, MinTTL: 60}))
	}
	msg, err := b.Finish()
	must(err)
	return msg
}

func q(name string, typ dnsmessage.Type) dnsmessage.Question {
	return dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}
}

type wantAnswer struct {
	name, target, addr string
	typ                dnsmessage.Type
	ttl                uint32
}

func checkAnswers(t *testing.T, m *Message, want []wantAnswer) {
	t.Helper()
	if m.NumAnswers != len(want) {
		t.Fatalf("NumAnswers = %d, want %d", m.NumAnswers, len(want))
	}
	for i, w := range want {
		a := &m.Answers[i]
		if a.Type != w.typ || a.TTL != w.ttl || a.Name.String() != w.name || a.Target.String() != w.target {
			t.Errorf("answer %d = {%s %v ttl=%d target=%q}, want {%s %v ttl=%d target=%q}", i, a.Name.String(), a.Type, a.TTL, a.Target.String(), w.name, w.typ, w.ttl, w.target)
		}
		var wantAddr netip.Addr
		if w.addr != "" {
			wantAddr = netip.MustParseAddr(w.addr)
		}
		if a.Addr != wantAddr {
			t.Errorf("answer %d addr = %v, want %v", i, a.Addr, wantAddr)
		}
	}
}

func TestParseBuilt(t *testing.T) {
	resp := dnsmessage.Header{ID: 0xbeef, Response: true, RecursionDesired: true, RecursionAvailable: true}
	nx := resp
	nx.RCode = dnsmessage.RCodeNameError
	refused := resp
	refused.RCode = dnsmessage.RCodeRefused
	trunc := resp
	trunc.Truncated = true

	many := make([]rr, 0, 20)
	wantMany := make([]wantAnswer, 0, MaxAnswers)
	for i := 0; i < 20; i++ {
		addr := netip.AddrFrom4([4]byte{170, 114, 10, byte(i)}).String()
		many = append(many, rr{name: "zoomfrn99mmr.zoom.us.", typ: dnsmessage.TypeA, ttl: 60, addr: addr})
		if i < MaxAnswers {
			wantMany = append(wantMany, wantAnswer{name: "zoomfrn99mmr.zoom.us", typ: dnsmessage.TypeA, ttl: 60, addr: addr})
		}
	}

	tests := []struct {
		name      string
		h         dnsmessage.Header
		qs        []dnsmessage.Question
		ans       []rr
		soa       bool
		wantQName string
		wantQType dnsmessage.Type
		wantQs    int
		wantRCode dnsmessage.RCode
		wantResp  bool
		wantTC    bool
		want      []wantAnswer
		dropped   int
		other     int
	}{
		{
			name: "query uppercase", h: dnsmessage.Header{ID: 7, RecursionDesired: true},
			qs:        []dnsmessage.Question{q("ZoomAM104ZC.Zoom.US.", dnsmessage.TypeA)},
			wantQName: "zoomam104zc.zoom.us", wantQType: dnsmessage.TypeA, wantQs: 1,
		},
		{
			name: "cname chain to A", h: resp,
			qs: []dnsmessage.Question{q("www.Zoom.us.", dnsmessage.TypeA)},
			ans: []rr{
				{name: "www.Zoom.us.", typ: dnsmessage.TypeCNAME, ttl: 300, target: "zoom.us.Edge.example.net."},
				{name: "zoom.us.edge.example.net.", typ: dnsmessage.TypeCNAME, ttl: 120, target: "e1.example.net."},
				{name: "e1.example.net.", typ: dnsmessage.TypeA, ttl: 20, addr: "170.114.52.2"},
				{name: "e1.example.net.", typ: dnsmessage.TypeA, ttl: 20, addr: "170.114.52.3"},
			},
			wantQName: "www.zoom.us", wantQType: dnsmessage.TypeA, wantQs: 1, wantResp: true,
			want: []wantAnswer{
				{name: "www.zoom.us", typ: dnsmessage.TypeCNAME, ttl: 300, target: "zoom.us.edge.example.net"},
				{name: "zoom.us.edge.example.net", typ: dnsmessage.TypeCNAME, ttl: 120, target: "e1.example.net"},
				{name: "e1.example.net", typ: dnsmessage.TypeA, ttl: 20, addr: "170.114.52.2"},
				{name: "e1.example.net", typ: dnsmessage.TypeA, ttl: 20, addr: "170.114.52.3"},
			},
		},
		{
			name: "AAAA", h: resp,
			qs:        []dnsmessage.Question{q("zoom.us.", dnsmessage.TypeAAAA)},
			ans:       []rr{{name: "zoom.us.", typ: dnsmessage.TypeAAAA, ttl: 3600, addr: "2620:123:2000::1"}},
			wantQName: "zoom.us", wantQType: dnsmessage.TypeAAAA, wantQs: 1, wantResp: true,
			want: []wantAnswer{{name: "zoom.us", typ: dnsmessage.TypeAAAA, ttl: 3600, addr: "2620:123:2000::1"}},
		},
		{
			name: "NXDOMAIN with SOA", h: nx, soa: true,
			qs:        []dnsmessage.Question{q("nosuch.zoom.us.", dnsmessage.TypeA)},
			wantQName: "nosuch.zoom.us", wantQType: dnsmessage.TypeA, wantQs: 1, wantResp: true, wantRCode: dnsmessage.RCodeNameError,
		},
		{
			name: "REFUSED", h: refused,
			qs:        []dnsmessage.Question{q("zoom.us.", dnsmessage.TypeA)},
			wantQName: "zoom.us", wantQType: dnsmessage.TypeA, wantQs: 1, wantResp: true, wantRCode: dnsmessage.RCodeRefused,
		},
		{
			name: "TC bit", h: trunc,
			qs:        []dnsmessage.Question{q("zoom.us.", dnsmessage.TypeA)},
			wantQName: "zoom.us", wantQType: dnsmessage.TypeA, wantQs: 1, wantResp: true, wantTC: true,
		},
		{
			name: "answers beyond MaxAnswers dropped", h: resp,
			qs: []dnsmessage.Question{q("zoomfrn99mmr.zoom.us.", dnsmessage.TypeA)}, ans: many,
			wantQName: "zoomfrn99mmr.zoom.us", wantQType: dnsmessage.TypeA, wantQs: 1, wantResp: true,
			want: wantMany, dropped: 20 - MaxAnswers,
		},
		{
			name: "other types skipped", h: resp,
			qs: []dnsmessage.Question{q("zoom.us.", dnsmessage.TypeTXT)},
			ans: []rr{
				{name: "zoom.us.", typ: dnsmessage.TypeTXT, ttl: 5},
				{name: "zoom.us.", typ: dnsmessage.TypeMX, ttl: 5, target: "mx.zoom.us."},
				{name: "zoom.us.", typ: dnsmessage.TypeA, ttl: 5, addr: "10.0.0.1"},
			},
			wantQName: "zoom.us", wantQType: dnsmessage.TypeTXT, wantQs: 1, wantResp: true, other: 2,
			want: []wantAnswer{{name: "zoom.us", typ: dnsmessage.TypeA, ttl: 5, addr: "10.0.0.1"}},
		},
		{
			name: "two questions keep the first", h: resp,
			qs:        []dnsmessage.Question{q("a.zoom.us.", dnsmessage.TypeA), q("b.zoom.us.", dnsmessage.TypeAAAA)},
			wantQName: "a.zoom.us", wantQType: dnsmessage.TypeA, wantQs: 2, wantResp: true,
		},
		{
			name: "root name", h: resp,
			qs:        []dnsmessage.Question{q(".", dnsmessage.TypeNS)},
			wantQName: "", wantQType: dnsmessage.TypeNS, wantQs: 1, wantResp: true,
		},
	}
	var m Message
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := build(t, tc.h, tc.qs, tc.ans, tc.soa)
			if err := Parse(msg, &m); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.ID != tc.h.ID || m.Response != tc.wantResp || m.RCode != tc.wantRCode || m.Truncated != tc.wantTC {
				t.Errorf("header = id %#x resp %v rcode %v tc %v", m.ID, m.Response, m.RCode, m.Truncated)
			}
			if m.QName.String() != tc.wantQName || m.QType != tc.wantQType || m.Questions != tc.wantQs {
				t.Errorf("question = %q %v (%d), want %q %v (%d)", m.QName.String(), m.QType, m.Questions, tc.wantQName, tc.wantQType, tc.wantQs)
			}
			checkAnswers(t, &m, tc.want)
			if m.AnswersDropped != tc.dropped || m.OtherAnswers != tc.other || m.Incomplete {
				t.Errorf("dropped %d other %d incomplete %v, want %d %d false", m.AnswersDropped, m.OtherAnswers, m.Incomplete, tc.dropped, tc.other)
			}
		})
	}
}

// header12 writes a raw header for hand-made messages.
func header12(id uint16, flags uint16, qd, an uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	return b
}

func TestParseMalformed(t *testing.T) {
	good := build(t, dnsmessage.Header{ID: 1, Response: true}, []dnsmessage.Question{q("zoom.us.", dnsmessage.TypeA)},
		[]rr{
			{name: "zoom.us.", typ: dnsmessage.TypeA, ttl: 1, addr: "170.114.52.2"},
			{name: "zoom.us.", typ: dnsmessage.TypeA, ttl: 1, addr: "170.114.52.3"},
		}, false)
	// question is 12 + 9 (zoom.us) + 4 = 25 bytes; first answer 25..41 (pointer name)
	selfLoopQ := append(header12(2, 0x8180, 1, 0), 0xC0, 12, 0, 1, 0, 1)
	// two pointers pointing at each other
	pingPong := append(header12(3, 0x8180, 1, 0), 0xC0, 14, 0xC0, 12, 0, 1, 0, 1)
	// answer name pointer loop after a valid question
	ansLoop := append(header12(4, 0x8180, 1, 1), 4, 'z', 'o', 'o', 'm', 2, 'u', 's', 0, 0, 1, 0, 1)
	ansLoop = append(ansLoop, 0xC0, byte(len(ansLoop)), 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4)
	// a label claims more bytes than the message has
	longLabel := append(header12(5, 0, 1, 0), 60, 'a', 'b')
	// pointer forward beyond the end
	ptrOut := append(header12(6, 0, 1, 0), 0xC0, 0xFF, 0, 1, 0, 1)
	// A record with rdlength 3
	badA := append(header12(7, 0x8180, 1, 1), 4, 'z', 'o', 'o', 'm', 2, 'u', 's', 0, 0, 1, 0, 1, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 3, 1, 2, 3)

	tests := []struct {
		name       string
		msg        []byte
		err        error
		qname      string
		numAnswers int
	}{
		{"empty", nil, ErrHeader, "", 0},
		{"header cut", good[:11], ErrHeader, "", 0},
		{"question cut in name", good[:16], ErrQuestion, "", 0},
		{"question cut in type", good[:22], ErrQuestion, "", 0},
		{"first answer cut", good[:30], ErrAnswers, "zoom.us", 0},
		{"second answer cut", good[:len(good)-2], ErrAnswers, "zoom.us", 1},
		{"question pointer to itself", selfLoopQ, ErrQuestion, "", 0},
		{"question pointer ping-pong", pingPong, ErrQuestion, "", 0},
		{"answer pointer loop", ansLoop, ErrAnswers, "zoom.us", 0},
		{"label past end", longLabel, ErrQuestion, "", 0},
		{"pointer past end", ptrOut, ErrQuestion, "", 0},
		{"A rdlength 3", badA, ErrAnswers, "zoom.us", 0},
	}
	var m Message
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// dirty the message first: Parse must reset it
			if err := Parse(good, &m); err != nil || m.NumAnswers != 2 {
				t.Fatalf("good message: %v, %d answers", err, m.NumAnswers)
			}
			err := Parse(tc.msg, &m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if m.QName.String() != tc.qname || m.NumAnswers != tc.numAnswers {
				t.Errorf("qname %q answers %d, want %q %d", m.QName.String(), m.NumAnswers, tc.qname, tc.numAnswers)
			}
			if (tc.err == ErrAnswers) != m.Incomplete {
				t.Errorf("Incomplete = %v", m.Incomplete)
			}
		})
	}
}

func TestTCP(t *testing.T) {
	m1 := build(t, dnsmessage.Header{ID: 11, Response: true}, []dnsmessage.Question{q("zoom.us.", dnsmessage.TypeA)},
		[]rr{{name: "zoom.us.", typ: dnsmessage.TypeA, ttl: 9, addr: "170.114.52.2"}}, false)
	m2 := build(t, dnsmessage.Header{ID: 12, Response: true, RCode: dnsmessage.RCodeServerFailure}, []dnsmessage.Question{q("zoom.com.", dnsmessage.TypeAAAA)}, nil, false)
	var stream []byte
	for _, msg := range [][]byte{m1, m2} {
		stream = binary.BigEndian.AppendUint16(stream, uint16(len(msg)))
		stream = append(stream, msg...)
	}

	var m Message
	if err := ParseTCP(stream, &m); err != nil || m.ID != 11 || m.NumAnswers != 1 || m.Answers[0].Addr != netip.MustParseAddr("170.114.52.2") {
		t.Fatalf("first: err %v id %d answers %d", err, m.ID, m.NumAnswers)
	}
	msg, rest, complete := SplitTCP(stream)
	if !complete || !bytes.Equal(msg, m1) {
		t.Fatalf("SplitTCP first: complete %v", complete)
	}
	if err := ParseTCP(rest, &m); err != nil || m.ID != 12 || m.RCode != dnsmessage.RCodeServerFailure || m.QName.String() != "zoom.com" {
		t.Fatalf("second: err %v id %d rcode %v", err, m.ID, m.RCode)
	}
	// cut inside the second message's answer-less body: header and question whole, length says more
	cut := rest[:len(rest)-1]
	if err := ParseTCP(cut, &m); !errors.Is(err, ErrQuestion) && !errors.Is(err, ErrTCPLength) {
		t.Fatalf("cut: err %v", err)
	}
	// a message whose length prefix promises bytes past the end of what parsed fine
	padded := binary.BigEndian.AppendUint16(nil, uint16(len(m1)+10))
	padded = append(padded, m1...)
	if err := ParseTCP(padded, &m); !errors.Is(err, ErrTCPLength) || m.ID != 11 || m.NumAnswers != 1 {
		t.Fatalf("short stream: err %v id %d answers %d", err, m.ID, m.NumAnswers)
	}
	if err := ParseTCP([]byte{0}, &m); !errors.Is(err, ErrTCPLength) || m.ID != 0 {
		t.Fatalf("1 byte: err %v", err)
	}
	if msg, _, _ := SplitTCP([]byte{0}); msg != nil {
		t.Fatal("SplitTCP of 1 byte returned a message")
	}
}

func TestParseAllocs(t *testing.T) {
	msg := build(t, dnsmessage.Header{ID: 1, Response: true}, []dnsmessage.Question{q("www.zoom.us.", dnsmessage.TypeA)},
		[]rr{
			{name: "www.zoom.us.", typ: dnsmessage.TypeCNAME, ttl: 30, target: "zoom.us."},
			{name: "zoom.us.", typ: dnsmessage.TypeA, ttl: 30, addr: "170.114.52.2"},
			{name: "zoom.us.", typ: dnsmessage.TypeAAAA, ttl: 30, addr: "2620:123:2000::2"},
		}, false)
	m := new(Message)
	if n := testing.AllocsPerRun(100, func() {
		if err := Parse(msg, m); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse allocates %.1f times per message, want 0", n)
	}
}

func BenchmarkParse(b *testing.B) {
	msg := build(b, dnsmessage.Header{ID: 1, Response: true}, []dnsmessage.Question{q("www.zoom.us.", dnsmessage.TypeA)},
		[]rr{
			{name: "www.zoom.us.", typ: dnsmessage.TypeCNAME, ttl: 30, target: "zoom.us.edge.example.net."},
			{name: "zoom.us.edge.example.net.", typ: dnsmessage.TypeA, ttl: 30, addr: "170.114.52.2"},
			{name: "zoom.us.edge.example.net.", typ: dnsmessage.TypeA, ttl: 30, addr: "170.114.52.3"},
		}, false)
	m := new(Message)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := Parse(msg, m); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(build(f, dnsmessage.Header{ID: 1, Response: true}, []dnsmessage.Question{q("www.zoom.us.", dnsmessage.TypeA)},
		[]rr{
			{name: "www.zoom.us.", typ: dnsmessage.TypeCNAME, ttl: 30, target: "zoom.us."},
			{name: "zoom.us.", typ: dnsmessage.TypeA, ttl: 30, addr: "170.114.52.2"},
			{name: "zoom.us.", typ: dnsmessage.TypeAAAA, ttl: 30, addr: "2620:123:2000::2"},
		}, false))
	f.Add(build(f, dnsmessage.Header{ID: 2, Response: true, RCode: dnsmessage.RCodeNameError}, []dnsmessage.Question{q("x.zoom.us.", dnsmessage.TypeA)}, nil, true))
	f.Add(append(header12(2, 0x8180, 1, 0), 0xC0, 12, 0, 1, 0, 1))
	f.Add(append(header12(4, 0x8180, 1, 1), 4, 'z', 'o', 'o', 'm', 2, 'u', 's', 0, 0, 1, 0, 1, 0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 0xC0, 12))
	var m Message
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Parse(b, &m)
		if m.NumAnswers < 0 || m.NumAnswers > MaxAnswers {
			t.Fatalf("NumAnswers %d", m.NumAnswers)
		}
		if err == nil && m.Incomplete {
			t.Fatal("Incomplete without error")
		}
		checkName := func(n *Name) {
			s := n.Bytes()
			if len(s) > MaxNameLen || bytes.HasSuffix(s, []byte{'.'}) {
				t.Fatalf("bad name %q", s)
			}
			for _, c := range s {
				if 'A' <= c && c <= 'Z' {
					t.Fatalf("name not lowercased: %q", s)
				}
			}
		}
		checkName(&m.QName)
		for i := range m.AnswerList() {
			a := &m.Answers[i]
			checkName(&a.Name)
			checkName(&a.Target)
			switch a.Type {
			case dnsmessage.TypeA:
				if !a.Addr.Is4() {
					t.Fatalf("A answer with %v", a.Addr)
				}
			case dnsmessage.TypeAAAA:
				if !a.Addr.Is6() {
					t.Fatalf("AAAA answer with %v", a.Addr)
				}
			case dnsmessage.TypeCNAME:
				if a.Addr.IsValid() {
					t.Fatal("CNAME with address")
				}
			default:
				t.Fatalf("kept answer type %v", a.Type)
			}
		}
		// the TCP path must agree with the UDP one on the same bytes
		if len(b) <= 0xffff {
			var mt Message
			framed := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
			if errT := ParseTCP(append(framed, b...), &mt); errT != err || mt.NumAnswers != m.NumAnswers || mt.QName.String() != m.QName.String() {
				t.Fatalf("TCP parse differs: %v vs %v", errT, err)
			}
		}
	})
}
