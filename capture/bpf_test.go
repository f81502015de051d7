package capture

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

func udpFrame(t testing.TB, dport layers.UDPPort, vlan bool) []byte {
	t.Helper()
	ls := []gopacket.SerializableLayer{}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
	if vlan {
		ls = append(ls, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4})
	} else {
		ls = append(ls, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4})
	}
	ls = append(ls, ip, &layers.UDP{SrcPort: 40000, DstPort: dport}, gopacket.Payload("hello"))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParseBPFTcpdumpOutput runs programs tcpdump -ddd compiled (kept in
// testdata) in x/net/bpf's VM against real frames.
func TestParseBPFTcpdumpOutput(t *testing.T) {
	cases := []struct {
		file  string
		frame []byte
		keep  bool
	}{
		{"udp8801-or-tcp443.bpf", udpFrame(t, 8801, false), true},
		{"udp8801-or-tcp443.bpf", udpFrame(t, 53, false), false},
		{"udp-dst-9999.bpf", udpFrame(t, 9999, false), true},
		{"udp-dst-9999.bpf", udpFrame(t, 9998, false), false},
		{"vlan-ip.bpf", udpFrame(t, 53, true), true},
		{"vlan-ip.bpf", udpFrame(t, 53, false), false},
	}
	for _, tc := range cases {
		text, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := ParseBPF(string(text))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if want := strings.Count(strings.TrimSpace(string(text)), "\n"); len(prog) != want {
			t.Fatalf("%s: %d instructions, want %d", tc.file, len(prog), want)
		}
		insns := make([]bpf.Instruction, len(prog))
		for i, r := range prog {
			insns[i] = r.Disassemble()
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			t.Fatalf("%s: VM refuses the program: %v", tc.file, err)
		}
		n, err := vm.Run(tc.frame)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != tc.keep {
			t.Errorf("%s: kept %d bytes, want keep=%v", tc.file, n, tc.keep)
		}
	}
}

func TestParseBPFErrors(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"empty", "\n\n", "empty program"},
		{"no count", "6 0 0 65535\n", "line 1: want the instruction count"},
		{"count zero", "0\n", "line 1: instruction count"},
		{"count too big", "5000\n", "from 1 to 4096"},
		{"count mismatch", "3\n6 0 0 65535\n6 0 0 0\n", "line 1: the count says 3 instructions, but 2 follow"},
		{"more than counted", "1\n6 0 0 65535\n6 0 0 0\n", "line 1: the count says 1 instructions, but 2 follow"},
		{"three fields", "1\n6 0 65535\n", "line 2: want 4 decimal numbers"},
		{"hex field", "1\n0x6 0 0 1\n", "line 2: field 1"},
		{"jt overflow", "1\n21 300 0 1\n", "line 2: field 2"},
		{"bad opcode", "2\n255 0 0 0\n6 0 0 0\n", "line 2: opcode 0xff"},
		{"jump past end", "2\n21 5 0 2048\n6 0 0 0\n", "line 2: conditional jump past the end"},
		{"ja past end", "2\n5 0 0 7\n6 0 0 0\n", "line 2: jump past the end"},
		{"no ret", "1\n40 0 0 12\n", "last instruction must return"},
	}
	for _, tc := range cases {
		_, err := ParseBPF(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestWithSnapLen(t *testing.T) {
	prog, err := ParseBPF("3\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n")
	if err == nil {
		t.Fatalf("miscounted program accepted: %v", prog)
	}
	prog, err = ParseBPF("4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	got := withSnapLen(prog, 1500)
	if got[2].K != 1500 || got[3].K != 0 || prog[2].K != 262144 {
		t.Errorf("snaplen not applied to accepting returns only (or input modified): %v / %v", got, prog)
	}
	if only := withSnapLen(nil, 96); len(only) != 1 || only[0].K != 96 {
		t.Errorf("no filter: %v, want a single ret #96", only)
	}
	if same := withSnapLen(prog, 0); len(same) != len(prog) || same[2].K != 262144 {
		t.Errorf("snaplen 0 changed the program: %v", same)
	}
}
