package offline

import (
	"net/netip"
	"time"

	"github.com/zoomprobe/zoomprobe/finding"
)

// GroupKey is what makes findings "the same": the same verdict about the
// same server. Clients and times are what varies inside a group.
type GroupKey struct {
	Kind       finding.Kind   `json:"kind"`
	Reason     finding.Reason `json:"reason"`
	Service    string         `json:"service,omitempty"`
	Transport  string         `json:"transport,omitempty"`
	Server     netip.Addr     `json:"server,omitzero"`
	ServerPort uint16         `json:"server_port,omitempty"`
	SNI        string         `json:"sni,omitempty"`
	Product    string         `json:"product,omitempty"`
}

// Group is repeated findings told once: how many, when, from how many
// clients, and the first of them with its evidence.
type Group struct {
	GroupKey
	Count   int       `json:"count"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Clients int       `json:"clients"` // distinct client addresses
	// Example is the group's first finding, evidence included.
	Example finding.Finding `json:"example"`
}

// KeyOf is the group key of a finding.
func KeyOf(f *finding.Finding) GroupKey {
	k := GroupKey{Kind: f.Kind, Reason: f.Reason, Service: f.Service, SNI: f.SNI, Product: f.Product}
	if f.Flow != nil {
		k.Transport, k.Server, k.ServerPort = f.Flow.Transport, f.Flow.Server, f.Flow.ServerPort
	}
	return k
}

// GroupFindings groups findings by KeyOf, in the order each group first
// appears (findings sorted by time give groups sorted by first time).
func GroupFindings(fs []finding.Finding) []Group {
	var groups []Group
	index := map[GroupKey]int{}
	clients := map[GroupKey]map[netip.Addr]struct{}{}
	for i := range fs {
		f := &fs[i]
		k := KeyOf(f)
		gi, ok := index[k]
		if !ok {
			gi = len(groups)
			index[k] = gi
			groups = append(groups, Group{GroupKey: k, First: f.Time, Last: f.Time, Example: *f})
			clients[k] = map[netip.Addr]struct{}{}
		}
		g := &groups[gi]
		g.Count++
		if f.Time.Before(g.First) {
			g.First = f.Time
		}
		if f.Time.After(g.Last) {
			g.Last = f.Time
		}
		if f.Flow != nil && f.Flow.Client.IsValid() {
			clients[k][f.Flow.Client] = struct{}{}
		}
	}
	for i := range groups {
		groups[i].Clients = len(clients[groups[i].GroupKey])
	}
	return groups
}
