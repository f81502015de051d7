package offline

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
)

// tupleKey is a flow's 5-tuple as findings name it.
type tupleKey struct {
	transport  string
	client     netip.Addr
	clientPort uint16
	server     netip.Addr
	serverPort uint16
}

// tlsSource is the TLS analyzer's name: its findings' evidence holds the
// negotiated "version" and the leaf's "issuer".
const tlsSource = "tls"

// handshakeKey names one flow while it lives: its five-tuple and first packet.
type handshakeKey struct {
	tupleKey
	first int64
}

func handshakeKeyOf(f *flow.Flow) handshakeKey {
	c, s := f.Client(), f.Server()
	return handshakeKey{tupleKey{f.Transport(), c.Addr(), c.Port(), s.Addr(), s.Port()}, f.First().UnixNano()}
}

// maxVerdictsPerFlow bounds the verdicts listed on one flow (a flow rarely
// has more than two: a block and the fallback it caused).
const maxVerdictsPerFlow = 8

// attachVerdicts joins findings to the flows they are about, by 5-tuple:
// each flow gets the kind/reason of its findings and what they learnt of it
// (SNI, TLS version, issuer), which the flow table alone does not keep.
// Flows must be sorted by first packet time. When a 5-tuple was reused, a
// finding goes to the latest flow that started before it.
func attachVerdicts(flows []Flow, fs []finding.Finding) {
	byTuple := map[tupleKey][]int{}
	for i := range flows {
		fl := &flows[i]
		k := tupleKey{fl.Transport, fl.Client, fl.ClientPort, fl.Server, fl.ServerPort}
		byTuple[k] = append(byTuple[k], i)
	}
	for i := range fs {
		f := &fs[i]
		if f.Flow == nil {
			continue
		}
		idx := byTuple[tupleKey{f.Flow.Transport, f.Flow.Client, f.Flow.ClientPort, f.Flow.Server, f.Flow.ServerPort}]
		if len(idx) == 0 {
			continue
		}
		fl := &flows[idx[0]]
		for _, j := range idx[1:] {
			if !flows[j].First.After(f.Time) {
				fl = &flows[j]
			}
		}
		v := string(f.Kind) + "/" + string(f.Reason)
		if !slices.Contains(fl.Verdicts, v) && len(fl.Verdicts) < maxVerdictsPerFlow {
			fl.Verdicts = append(fl.Verdicts, v)
		}
		if fl.SNI == "" {
			fl.SNI = f.SNI
		}
		if f.Source != tlsSource {
			continue
		}
		if v := evidenceString(f.Evidence, "version"); fl.TLSVersion == "" && v != "unknown" {
			fl.TLSVersion = v // "unknown": no ServerHello was seen
		}
		if fl.Issuer == "" {
			fl.Issuer = cmp.Or(evidenceString(f.Evidence, "issuer_cn"), evidenceString(f.Evidence, "issuer"))
		}
	}
}

func evidenceString(ev map[string]any, key string) string {
	v, ok := ev[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
