package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Route tables read by DefaultRouteInterface; variables so tests can point
// them at fixtures.
var (
	procRoute     = "/proc/net/route"
	procIPv6Route = "/proc/net/ipv6_route"
)

// DefaultRouteInterface names the interface of the IPv4 default route
// (/proc/net/route), or of the IPv6 default route (/proc/net/ipv6_route)
// when there is no IPv4 one. With several default routes, the lowest metric wins.
func DefaultRouteInterface() (string, error) {
	name, err4 := defaultRoute4(procRoute)
	if err4 == nil {
		return name, nil
	}
	name, err6 := defaultRoute6(procIPv6Route)
	if err6 == nil {
		return name, nil
	}
	return "", fmt.Errorf("capture: no default route: %v; %v", err4, err6)
}

var errNoDefault = errors.New("no default route")

// defaultRoute4 parses the header-led table: Iface Destination Gateway Flags
// RefCnt Use Metric Mask ... with hex destination and mask.
func defaultRoute4(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	best, bestMetric := "", int64(-1)
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		var flags, metric int64
		if _, err := fmt.Sscanf(fl[3], "%x", &flags); err != nil {
			continue
		}
		fmt.Sscanf(fl[6], "%d", &metric)
		const rtfUp = 0x1
		if fl[1] != "00000000" || fl[7] != "00000000" || flags&rtfUp == 0 {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = fl[0], metric
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if best == "" {
		return "", fmt.Errorf("%s: %w", path, errNoDefault)
	}
	return best, nil
}

// defaultRoute6 parses lines of: dest destlen src srclen nexthop metric
// refcnt use flags iface (hex fields, no header).
func defaultRoute6(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	best, bestMetric := "", int64(-1)
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 10 {
			continue
		}
		if fl[0] != strings.Repeat("0", 32) || fl[1] != "00" || fl[9] == "lo" {
			continue
		}
		var flags, metric int64
		fmt.Sscanf(fl[8], "%x", &flags)
		fmt.Sscanf(fl[5], "%x", &metric)
		const rtfUp, rtfReject = 0x1, 0x200
		if flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = fl[9], metric
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if best == "" {
		return "", fmt.Errorf("%s: %w", path, errNoDefault)
	}
	return best, nil
}
