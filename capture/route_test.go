package capture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultRouteInterface(t *testing.T) {
	const head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	const v6default = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     wlan0\n"
	const v6lo = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
	cases := []struct {
		name, v4, v6, want, err string
	}{
		{name: "ipv4 default", v4: head + "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", want: "eth0"},
		{name: "lowest metric wins", v4: head + "wwan0\t00000000\t01000A0A\t0003\t0\t0\t600\t00000000\t0\t0\t0\nens3\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", want: "ens3"},
		{name: "route down ignored, ipv6 fallback", v4: head + "eth0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n", v6: v6lo + v6default, want: "wlan0"},
		{name: "no default anywhere", v4: head, v6: v6lo, err: "no default route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			v4, v6 := filepath.Join(dir, "route"), filepath.Join(dir, "ipv6_route")
			os.WriteFile(v4, []byte(tc.v4), 0o644)
			os.WriteFile(v6, []byte(tc.v6), 0o644)
			old4, old6 := procRoute, procIPv6Route
			procRoute, procIPv6Route = v4, v6
			t.Cleanup(func() { procRoute, procIPv6Route = old4, old6 })
			got, err := DefaultRouteInterface()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
